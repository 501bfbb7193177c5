//! The root CA certificate: built from an OpenSSL config (the profile `openssl req
//! -x509 -config` reads), signed by a token key through the provider, and checked.

use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::conf::Conf;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509NameBuilder, X509StoreContext, X509};

use super::ffi::{self, ConfExt as _};
use super::BridgeError;

/// A certificate profile read from an OpenSSL config file.
pub struct Profile {
    conf: Conf,
    /// The `[req] distinguished_name` entries, in file order.
    pub subject: Vec<(String, String)>,
    /// The `[req] x509_extensions` section name.
    pub extensions: String,
    /// SHA-256 of the config text the profile was read from.
    pub sha256: [u8; 32],
}

impl Profile {
    /// Reads a profile file (see [`Profile::from_text`]).
    pub fn load(path: &Path) -> Result<Profile, String> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
        Self::from_text(&text, &name)
    }

    /// A profile from a config's text: `[req] distinguished_name` (with `prompt = no`)
    /// and `[req] x509_extensions`, as `openssl req` reads them.
    pub fn from_text(text: &str, name: &str) -> Result<Profile, String> {
        let conf = ffi::parse_config_text(text).map_err(|e| format!("{name}: {e}"))?;
        let dn_section = conf
            .get("req", "distinguished_name")
            .ok_or_else(|| format!("{name}: [req] has no distinguished_name"))?;
        let extensions = conf
            .get("req", "x509_extensions")
            .ok_or_else(|| format!("{name}: [req] has no x509_extensions"))?;
        if conf.section(&extensions).is_none() {
            return Err(format!("{name}: no [{extensions}] section"));
        }
        let subject: Vec<(String, String)> = conf
            .section(&dn_section)
            .ok_or_else(|| format!("{name}: no [{dn_section}] section"))?
            .into_iter()
            // `openssl req` allows "0.OU = ..." to repeat a field; the prefix is not part of the name.
            .map(|(k, v)| (k.rsplit('.').next().unwrap_or(&k).to_string(), v))
            .collect();
        if subject.is_empty() {
            return Err(format!("{name}: [{dn_section}] is empty"));
        }
        Ok(Profile {
            sha256: openssl::sha::sha256(text.as_bytes()),
            conf,
            subject,
            extensions,
        })
    }
}

/// How a built certificate gets its signature.
pub enum CertSigner<'a> {
    /// X509_sign with this key and digest: for a provider key, EVP_DigestSign in the
    /// token.
    Evp(&'a PKeyRef<Private>, MessageDigest),
    /// Signed with a throwaway key first (OpenSSL sets the algorithm fields), then its
    /// TBSCertificate by the token ([`super::TbsSigner`]): for RSA on a token without
    /// the hash-and-sign mechanism (opencryptoki's soft token has only CKM_RSA_PKCS),
    /// where pkcs11-provider's DigestSign fallback signs the bare digest without the
    /// DigestInfo (pkcs11-provider issue #592) and X509_sign through the provider makes
    /// a certificate that does not verify.
    Tbs(&'a super::TbsSigner<'a>),
}

impl CertSigner<'_> {
    fn sign(&self, mut cert: X509) -> anyhow::Result<X509> {
        match self {
            CertSigner::Evp(key, digest) => {
                ffi::sign_certificate(&mut cert, key, *digest)
                    .map_err(BridgeError::openssl("sign the certificate in the token (X509_sign)"))?;
                Ok(cert)
            }
            CertSigner::Tbs(signer) => {
                signer.lint_sign(&mut cert)?;
                signer.token_sign_certificate(&cert)
            }
        }
    }
}

/// Builds and signs a self-signed v3 certificate for `public`, extensions from the
/// profile, signed by `signer` (the token key).
pub fn build_self_signed(
    profile: &Profile,
    public: &PKey<Public>,
    serial: &[u8],
    days: u32,
    signer: &CertSigner<'_>,
) -> anyhow::Result<X509> {
    super::clear_openssl_errors();
    let op = BridgeError::openssl;
    let mut name = X509NameBuilder::new().map_err(op("allocate the subject"))?;
    for (field, value) in &profile.subject {
        name.append_entry_by_text(field, value)
            .map_err(op("add a subject field from the profile"))?;
    }
    let name = name.build();
    let mut b = X509::builder().map_err(op("allocate the certificate"))?;
    b.set_version(2).map_err(op("set version 3"))?;
    let serial = BigNum::from_slice(serial)
        .and_then(|n| n.to_asn1_integer())
        .map_err(op("encode the serial"))?;
    b.set_serial_number(&serial).map_err(op("set the serial"))?;
    b.set_subject_name(&name).map_err(op("set the subject"))?;
    b.set_issuer_name(&name).map_err(op("set the issuer"))?;
    let not_before = Asn1Time::days_from_now(0).map_err(op("notBefore"))?;
    let not_after = Asn1Time::days_from_now(days).map_err(op("notAfter"))?;
    b.set_not_before(&not_before).map_err(op("set notBefore"))?;
    b.set_not_after(&not_after).map_err(op("set notAfter"))?;
    b.set_pubkey(public).map_err(op("set the public key"))?;
    let mut cert = b.build();
    profile
        .conf
        .add_extensions_self_signed(&profile.extensions, &mut cert)
        .map_err(op("add the profile's extensions (X509V3_EXT_add_nconf)"))?;
    let cert = signer.sign(cert)?;
    super::clear_openssl_errors();
    Ok(cert)
}

/// The kind of a throwaway in-memory key.
#[derive(Debug, Clone, Copy)]
pub enum KeySpec {
    Ec(openssl::nid::Nid),
    Rsa(u32),
    Ed25519,
}

/// A fresh in-memory key of `spec` in OpenSSL's default provider, and its public half.
pub fn software_key(spec: KeySpec) -> Result<(PKey<Private>, PKey<Public>), BridgeError> {
    let op = BridgeError::openssl("generate a software key");
    let key = match spec {
        KeySpec::Ec(nid) => openssl::ec::EcGroup::from_curve_name(nid)
            .and_then(|g| openssl::ec::EcKey::generate(&g))
            .and_then(PKey::from_ec_key),
        KeySpec::Rsa(bits) => openssl::rsa::Rsa::generate(bits).and_then(PKey::from_rsa),
        KeySpec::Ed25519 => PKey::generate_ed25519(),
    }
    .map_err(op)?;
    let public = key
        .public_key_to_der()
        .and_then(|der| PKey::public_key_from_der(&der))
        .map_err(BridgeError::openssl("copy the public key"))?;
    Ok((key, public))
}

/// Builds and checks a certificate from `profile` with a throwaway in-memory key of the
/// ceremony's kind, so that a profile that cannot make a valid root is refused before
/// the token is touched (nothing to undo).
pub fn try_profile(profile: &Profile, days: u32, spec: KeySpec) -> Result<(), String> {
    let trial = || -> Result<(), String> {
        let (key, public) = software_key(spec).map_err(|e| e.to_string())?;
        let digest = super::Scheme::for_key(&public, None, None)?.x509_digest();
        let cert = build_self_signed(profile, &public, &[0x40; 16], days, &CertSigner::Evp(&key, digest))
            .map_err(|e| e.to_string())?;
        check_self_signed(&cert, &public).map(|_| ())
    };
    let result = trial();
    super::clear_openssl_errors();
    result
}

/// The checks made before anything is written: the certificate carries the token's
/// key, its signature verifies with that key, and OpenSSL accepts it as a trust anchor.
pub fn check_self_signed(
    cert: &X509,
    token_public: &PKey<Public>,
) -> Result<Vec<&'static str>, String> {
    let key = cert
        .public_key()
        .map_err(|e| format!("certificate public key unreadable: {e}"))?;
    if !key.public_eq(token_public) {
        return Err("the certificate's public key is not the token key".into());
    }
    if !cert
        .verify(token_public)
        .map_err(|e| format!("signature check failed: {e}"))?
    {
        return Err(
            "the certificate's signature does not verify with the token's public key".into(),
        );
    }
    let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    store.add_cert(cert.clone()).map_err(|e| e.to_string())?;
    let store = store.build();
    let chain = Stack::new().map_err(|e| e.to_string())?;
    let mut ctx = X509StoreContext::new().map_err(|e| e.to_string())?;
    let (ok, why) = ctx
        .init(&store, cert, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error().error_string().to_string()))
        })
        .map_err(|e| e.to_string())?;
    if !ok {
        return Err(format!(
            "OpenSSL does not accept it as a trust anchor: {why}"
        ));
    }
    let ski = cert.subject_key_id().map(|k| k.as_slice().to_vec());
    let aki = cert.authority_key_id().map(|k| k.as_slice().to_vec());
    if ski.is_none() || ski != aki {
        return Err(
            "subjectKeyIdentifier missing or not equal to authorityKeyIdentifier keyid".into(),
        );
    }
    super::clear_openssl_errors();
    Ok(vec![
        "public key = token key",
        "signature verifies",
        "self-signed trust anchor verifies",
        "SKI = AKI keyid",
    ])
}
