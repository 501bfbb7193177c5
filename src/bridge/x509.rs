//! Self-signed certificates (the root's), throwaway software keys, and OpenSSL's chain
//! verification: the one [`verify_chain`] that the ceremony and issuance both use.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::conf::ConfRef;
use openssl::pkey::{PKey, Private, Public};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509NameRef, X509StoreContext, X509};

use super::ffi::ConfExt as _;
use super::{BridgeError, TbsSigner};

/// What a self-signed certificate is made of: its subject, and the config section of
/// its extensions (`[req] x509_extensions` of a profile `openssl req -x509` reads).
pub struct SelfSignedTemplate<'a> {
    pub subject: &'a X509NameRef,
    pub extensions: (&'a ConfRef, &'a str),
    pub serial: &'a [u8],
    pub days: u32,
}

/// Builds a self-signed v3 certificate for `public` from `t`: signed first by the
/// throwaway key (OpenSSL sets the algorithm fields), then its TBSCertificate by the
/// token through `signer`.
pub fn build_self_signed(t: &SelfSignedTemplate<'_>, public: &PKey<Public>, signer: &TbsSigner<'_>) -> anyhow::Result<X509> {
    super::clear_openssl_errors();
    let op = BridgeError::openssl;
    let (name, serial, days) = (t.subject, t.serial, t.days);
    let mut b = X509::builder().map_err(op("allocate the certificate"))?;
    b.set_version(2).map_err(op("set version 3"))?;
    let serial = BigNum::from_slice(serial)
        .and_then(|n| n.to_asn1_integer())
        .map_err(op("encode the serial"))?;
    b.set_serial_number(&serial).map_err(op("set the serial"))?;
    b.set_subject_name(name).map_err(op("set the subject"))?;
    b.set_issuer_name(name).map_err(op("set the issuer"))?;
    let not_before = Asn1Time::days_from_now(0).map_err(op("notBefore"))?;
    let not_after = Asn1Time::days_from_now(days).map_err(op("notAfter"))?;
    b.set_not_before(&not_before).map_err(op("set notBefore"))?;
    b.set_not_after(&not_after).map_err(op("set notAfter"))?;
    b.set_pubkey(public).map_err(op("set the public key"))?;
    let mut cert = b.build();
    t.extensions
        .0
        .add_extensions_self_signed(t.extensions.1, &mut cert)
        .map_err(op("add the profile's extensions (X509V3_EXT_add_nconf)"))?;
    signer.lint_sign(&mut cert)?;
    let cert = signer.token_sign_certificate(&cert)?;
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

/// Why a self-signed certificate is not the trust anchor of the token key.
#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    #[error("the certificate's public key is not the token key")]
    OtherKey,
    #[error("the certificate's signature does not verify with the token's public key")]
    Signature,
    #[error("OpenSSL does not accept it as a trust anchor: {0}")]
    Anchor(String),
    #[error("subjectKeyIdentifier missing or not equal to authorityKeyIdentifier keyid")]
    KeyIdentifiers,
    #[error(transparent)]
    OpenSsl(#[from] BridgeError),
}

/// The checks made before anything is written: the certificate carries the token's
/// key, its signature verifies with that key, and OpenSSL accepts it as a trust anchor.
pub fn check_self_signed(cert: &X509, token_public: &PKey<Public>) -> Result<Vec<&'static str>, SelfSignedError> {
    let op = BridgeError::openssl;
    let key = cert.public_key().map_err(op("read the certificate's public key"))?;
    if !key.public_eq(token_public) {
        return Err(SelfSignedError::OtherKey);
    }
    if !cert.verify(token_public).map_err(op("verify the certificate"))? {
        return Err(SelfSignedError::Signature);
    }
    verify_chain(cert, &[], cert).map_err(|e| match e {
        ChainError::Rejected(why) => SelfSignedError::Anchor(why),
        ChainError::OpenSsl(e) => SelfSignedError::OpenSsl(e),
    })?;
    let ski = cert.subject_key_id().map(|k| k.as_slice().to_vec());
    let aki = cert.authority_key_id().map(|k| k.as_slice().to_vec());
    if ski.is_none() || ski != aki {
        return Err(SelfSignedError::KeyIdentifiers);
    }
    super::clear_openssl_errors();
    Ok(vec![
        "public key = token key",
        "signature verifies",
        "self-signed trust anchor verifies",
        "SKI = AKI keyid",
    ])
}

/// Why [`verify_chain`] did not accept a certificate.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// OpenSSL's verification refused it; its reason.
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    OpenSsl(#[from] BridgeError),
}

/// `X509_verify_cert`: `cert` chains through `untrusted` to the trust anchor `root`
/// (the one certificate in the store), as `openssl verify -CAfile ROOT -untrusted
/// CHAIN` checks it.
pub fn verify_chain(cert: &X509, untrusted: &[X509], root: &X509) -> Result<(), ChainError> {
    let op = BridgeError::openssl;
    let mut store = X509StoreBuilder::new().map_err(op("allocate a certificate store"))?;
    store.add_cert(root.clone()).map_err(op("add the trust anchor"))?;
    let store = store.build();
    let mut chain = Stack::new().map_err(op("allocate the chain"))?;
    for c in untrusted {
        chain.push(c.clone()).map_err(op("add to the chain"))?;
    }
    let mut ctx = X509StoreContext::new().map_err(op("allocate a verification context"))?;
    let (ok, why) = ctx
        .init(&store, cert, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error().error_string().to_string()))
        })
        .map_err(op("verify the chain (X509_verify_cert)"))?;
    super::clear_openssl_errors();
    match ok {
        true => Ok(()),
        false => Err(ChainError::Rejected(why)),
    }
}

/// What the rules need to know of a subject key.
pub enum KeyFacts {
    Rsa { bits: u32, exponent_odd_and_large: bool },
    /// The curve's OpenSSL name (None: explicit parameters) and whether the point is on it.
    Ec { curve: Option<String>, point_valid: bool },
    Ed25519,
    Other(String),
}

/// The facts of `key` (EC_KEY_check_key for the point).
pub fn subject_key_facts(key: &PKey<Public>) -> KeyFacts {
    use openssl::pkey::Id;
    match key.id() {
        Id::RSA => {
            let large = key.rsa().ok().is_some_and(|rsa| {
                let e = rsa.e();
                e.is_bit_set(0) && e.num_bits() >= 17
            });
            KeyFacts::Rsa { bits: key.bits(), exponent_odd_and_large: large }
        }
        Id::EC => match key.ec_key() {
            Ok(ec) => {
                // Named only if the SPKI's parameters are an OID (RFC 5480 §2.1.1): OpenSSL
                // reports a curve name for explicit parameters that match a known curve.
                let named = key.public_key_to_der().ok().is_some_and(|spki| ec_params_named(&spki));
                let curve = ec.group().curve_name().filter(|_| named).map(|n| super::curve_name(Some(n)));
                let valid = ec.check_key().is_ok();
                super::clear_openssl_errors();
                KeyFacts::Ec { curve, point_valid: valid }
            }
            Err(_) => KeyFacts::Ec { curve: None, point_valid: false },
        },
        Id::ED25519 => KeyFacts::Ed25519,
        other => KeyFacts::Other(super::key_type_name(other)),
    }
}

/// The keyUsage bits the rules look at (all false without the extension).
pub struct KeyUsageBits {
    pub key_cert_sign: bool,
    pub crl_sign: bool,
    pub key_encipherment: bool,
}

pub fn key_usage_bits(cert: &X509) -> KeyUsageBits {
    use openssl::x509::X509KeyUsage as K;
    let ku = cert.key_usage();
    let has = |bit: K| ku.is_some_and(|k| k.contains(bit));
    KeyUsageBits { key_cert_sign: has(K::KEY_CERT_SIGN), crl_sign: has(K::CRL_SIGN), key_encipherment: has(K::KEY_ENCIPHERMENT) }
}

/// notBefore and notAfter as Unix time.
pub fn validity(cert: &X509) -> Result<(i64, i64), BridgeError> {
    Ok((unix(cert.not_before())?, unix(cert.not_after())?))
}

/// An ASN.1 time as Unix time.
pub fn unix(t: &openssl::asn1::Asn1TimeRef) -> Result<i64, BridgeError> {
    let op = BridgeError::openssl("read a time");
    let epoch = Asn1Time::from_unix(0).map_err(op)?;
    let d = epoch.diff(t).map_err(BridgeError::openssl("compare times"))?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// Whether an EC SubjectPublicKeyInfo's algorithm parameters are a namedCurve OID (not
/// explicit ECParameters).
fn ec_params_named(spki: &[u8]) -> bool {
    use super::der;
    let Some(body) = der::contents(spki) else { return false };
    let Some(alg) = der::contents(body) else { return false };
    let Some(oid_len) = der::tlv_len(alg) else { return false };
    alg.get(oid_len) == Some(&0x06)
}
