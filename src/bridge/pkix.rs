//! The PKIX objects a CA makes: PKCS#10 requests, certificates issued from a request
//! and a profile, CRLs. Each is built with OpenSSL's API and first signed with a
//! throwaway in-memory key of the token key's kind, so that what is checked (linted)
//! before the token signs is the finished structure, as CA/Browser Forum ballot SC-75
//! and Boulder's ceremony tool require. Then the token signs the exact to-be-signed
//! bytes through the provider ([`TbsSigner`]), the throwaway signature is replaced
//! ([`resign`]), and OpenSSL parses and verifies the result.

use std::cell::OnceCell;
use std::net::IpAddr;

use openssl::asn1::Asn1Time;
use openssl::conf::ConfRef;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{
    X509Builder, X509Name, X509NameBuilder, X509NameRef, X509Req, X509ReqBuilder, X509,
};

use super::der;
use super::ffi::{self, ConfExt as _};
use super::x509::{software_key, KeySpec};
use super::BridgeError;

/// Signs to-be-signed bytes with the token key, and knows the throwaway key that
/// stands in for it while a structure is built and checked.
pub struct TbsSigner<'a> {
    /// The throwaway key's kind: the token key's algorithm (the AlgorithmIdentifier
    /// depends on the algorithm and digest, not on the key).
    spec: KeySpec,
    pub(super) digest: MessageDigest,
    pub(super) sign: &'a dyn Fn(&[u8]) -> anyhow::Result<Vec<u8>>,
    throwaway: OnceCell<PKey<Private>>,
}

impl<'a> TbsSigner<'a> {
    pub fn new(spec: KeySpec, digest: MessageDigest, sign: &'a dyn Fn(&[u8]) -> anyhow::Result<Vec<u8>>) -> Self {
        TbsSigner {
            spec: match spec {
                // The smallest RSA key OpenSSL signs with by default: key generation is
                // the cost of a throwaway, and its size is in no field of the result.
                KeySpec::Rsa(_) => KeySpec::Rsa(2048),
                other => other,
            },
            digest,
            sign,
            throwaway: OnceCell::new(),
        }
    }

    pub(super) fn throwaway(&self) -> anyhow::Result<&PKey<Private>> {
        if self.throwaway.get().is_none() {
            let (key, _) = software_key(self.spec)?;
            let _ = self.throwaway.set(key);
        }
        Ok(self.throwaway.get().expect("set above"))
    }

    /// The token's signature over `der`'s to-be-signed part, in place of the throwaway's.
    fn token_sign(&self, der: &[u8]) -> anyhow::Result<Vec<u8>> {
        resign(der, self.sign)
    }

    /// Signs `cert` with the throwaway key: OpenSSL sets both signature algorithm
    /// fields, and the result is the lint copy, final in everything but its signature.
    pub fn lint_sign(&self, cert: &mut X509) -> anyhow::Result<()> {
        ffi::sign_certificate(cert, self.throwaway()?, self.digest)
            .map_err(BridgeError::openssl("sign the lint copy (X509_sign)"))?;
        Ok(())
    }

    /// The token's certificate from a lint copy: the same bytes to be signed.
    pub fn token_sign_certificate(&self, lint: &X509) -> anyhow::Result<X509> {
        let op = BridgeError::openssl;
        let der = lint.to_der().map_err(op("encode the certificate"))?;
        Ok(X509::from_der(&self.token_sign(&der)?).map_err(op("decode the signed certificate"))?)
    }
}

/// Replaces the signature of a signed DER structure `SEQUENCE { tbs, algorithm,
/// BIT STRING }` (Certificate, CertificationRequest, CertificateList: RFC 5280 §4.1 and
/// §5.1, RFC 2986 §4.2) with `sign(tbs)`. The algorithm identifier is kept as OpenSSL
/// wrote it.
pub fn resign(der: &[u8], sign: &dyn Fn(&[u8]) -> anyhow::Result<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    let (tbs, alg) = der::signed_parts(der)
        .ok_or_else(|| anyhow::anyhow!("OpenSSL encoded a structure that is not SEQUENCE {{ tbs, algorithm, signature }}"))?;
    Ok(der::signed(tbs, alg, &sign(tbs)?))
}

/// A distinguished name from (field, value) pairs in order (`C`, `O`, `CN`, ... or
/// dotted OIDs), as OpenSSL's `X509_NAME_add_entry_by_txt` takes them; a field OpenSSL
/// does not know is named in the error.
pub fn name_from_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<X509Name, BridgeError> {
    let mut name = X509NameBuilder::new().map_err(BridgeError::openssl("allocate a name"))?;
    for (field, value) in entries {
        name.append_entry_by_text(field, value).map_err(|err| BridgeError::NameField {
            field: field.to_string(),
            reason: super::openssl_reason(&err),
        })?;
    }
    super::clear_openssl_errors();
    Ok(name.build())
}

/// One subjectAltName entry, in the `TYPE:value` form of `openssl req -addext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    Dns(String),
    Ip(IpAddr),
    Email(String),
    Uri(String),
}

impl AltName {
    /// The profile keyword for this kind (`dns`, `ip`, `email`, `uri`).
    pub fn kind(&self) -> &'static str {
        match self {
            AltName::Dns(_) => "dns",
            AltName::Ip(_) => "ip",
            AltName::Email(_) => "email",
            AltName::Uri(_) => "uri",
        }
    }
}

impl std::fmt::Display for AltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AltName::Dns(v) => write!(f, "DNS:{v}"),
            AltName::Ip(v) => write!(f, "IP:{v}"),
            AltName::Email(v) => write!(f, "email:{v}"),
            AltName::Uri(v) => write!(f, "URI:{v}"),
        }
    }
}

/// Why a request's subjectAltName cannot be read as hsm-demo's [`AltName`]s.
#[derive(Debug, thiserror::Error)]
pub enum AltNameError {
    #[error("the request's extensions do not decode ({0})")]
    Undecodable(String),
    #[error("an iPAddress of {0} bytes (4 or 16 only)")]
    IpLength(usize),
    #[error("an entry that is not DNS, IP, email or URI")]
    OtherKind,
    #[error("the request carries subjectAltName more than once (RFC 5280 §4.2: one instance per extension)")]
    Repeated,
}

/// The subjectAltName entries a request asks for; `Err` names an entry of a kind
/// hsm-demo does not issue (otherName, directoryName, ...).
pub fn requested_alt_names(req: &X509Req) -> Result<Vec<AltName>, AltNameError> {
    let names = match ffi::requested_alt_names(req).map_err(|e| AltNameError::Undecodable(super::openssl_reason(&e)))? {
        ffi::RequestedNames::Absent => return Ok(Vec::new()),
        ffi::RequestedNames::Repeated => return Err(AltNameError::Repeated),
        ffi::RequestedNames::Names(names) => names,
    };
    names
        .iter()
        .map(|n| {
            if let Some(d) = n.dnsname() {
                Ok(AltName::Dns(d.to_string()))
            } else if let Some(ip) = n.ipaddress() {
                match ip.len() {
                    4 => Ok(AltName::Ip(IpAddr::from(<[u8; 4]>::try_from(ip).expect("4 bytes")))),
                    16 => Ok(AltName::Ip(IpAddr::from(<[u8; 16]>::try_from(ip).expect("16 bytes")))),
                    n => Err(AltNameError::IpLength(n)),
                }
            } else if let Some(e) = n.email() {
                Ok(AltName::Email(e.to_string()))
            } else if let Some(u) = n.uri() {
                Ok(AltName::Uri(u.to_string()))
            } else {
                Err(AltNameError::OtherKind)
            }
        })
        .collect()
}

fn alt_names_builder(names: &[AltName]) -> SubjectAlternativeName {
    let mut b = SubjectAlternativeName::new();
    for n in names {
        match n {
            AltName::Dns(v) => b.dns(v),
            AltName::Ip(v) => b.ip(&v.to_string()),
            AltName::Email(v) => b.email(v),
            AltName::Uri(v) => b.uri(v),
        };
    }
    b
}

/// A PKCS#10 request (RFC 2986) for `public`, signed by the token key.
pub fn build_csr(
    subject: &X509NameRef,
    sans: &[AltName],
    public: &PKeyRef<Public>,
    signer: &TbsSigner<'_>,
) -> anyhow::Result<X509Req> {
    let op = BridgeError::openssl;
    let mut b = X509ReqBuilder::new().map_err(op("allocate the request"))?;
    b.set_version(0).map_err(op("set the request version"))?;
    b.set_subject_name(subject).map_err(op("set the subject"))?;
    b.set_pubkey(public).map_err(op("set the public key"))?;
    if !sans.is_empty() {
        let ext = alt_names_builder(sans)
            .build(&b.x509v3_context(None))
            .map_err(op("encode the subjectAltName"))?;
        let mut exts = Stack::new().map_err(op("allocate the extension list"))?;
        exts.push(ext).map_err(op("add the subjectAltName"))?;
        b.add_extensions(&exts).map_err(op("add the requested extensions"))?;
    }
    b.sign(signer.throwaway()?, signer.digest).map_err(op("sign the request (X509_REQ_sign)"))?;
    let der = b.build().to_der().map_err(op("encode the request"))?;
    let req = X509Req::from_der(&signer.token_sign(&der)?).map_err(op("decode the signed request"))?;
    if !req.verify(public).map_err(op("verify the request"))? {
        anyhow::bail!("the token's signature on the request does not verify with its public key");
    }
    super::clear_openssl_errors();
    Ok(req)
}

/// What a certificate issued from a request is made of.
pub struct CertTemplate<'a> {
    pub issuer: &'a X509,
    pub subject: &'a X509NameRef,
    pub public: &'a PKeyRef<Public>,
    pub serial: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    pub sans: &'a [AltName],
    /// Whether the subjectAltName is marked critical (it must be when the subject is
    /// empty).
    pub san_critical: bool,
    /// The profile's config and the section of its extensions.
    pub extensions: (&'a ConfRef, &'a str),
}

/// The certificate of `t`, signed by the throwaway key: the lint copy. Every field but
/// the signature is final.
pub fn build_certificate(t: &CertTemplate<'_>, signer: &TbsSigner<'_>) -> anyhow::Result<X509> {
    let op = BridgeError::openssl;
    let mut b = X509Builder::new().map_err(op("allocate the certificate"))?;
    b.set_version(2).map_err(op("set version 3"))?;
    let serial = openssl::bn::BigNum::from_slice(t.serial)
        .and_then(|n| n.to_asn1_integer())
        .map_err(op("encode the serial"))?;
    b.set_serial_number(&serial).map_err(op("set the serial"))?;
    b.set_subject_name(t.subject).map_err(op("set the subject"))?;
    b.set_issuer_name(t.issuer.subject_name()).map_err(op("set the issuer"))?;
    let nb = openssl::asn1::Asn1Time::from_unix(t.not_before).map_err(op("notBefore"))?;
    let na = openssl::asn1::Asn1Time::from_unix(t.not_after).map_err(op("notAfter"))?;
    b.set_not_before(&nb).map_err(op("set notBefore"))?;
    b.set_not_after(&na).map_err(op("set notAfter"))?;
    b.set_pubkey(t.public).map_err(op("set the public key"))?;
    if !t.sans.is_empty() {
        let mut names = alt_names_builder(t.sans);
        if t.san_critical {
            names.critical();
        }
        let ext = names
            .build(&b.x509v3_context(Some(t.issuer), None))
            .map_err(op("encode the subjectAltName"))?;
        b.append_extension(ext).map_err(op("add the subjectAltName"))?;
    }
    let mut cert = b.build();
    t.extensions
        .0
        .add_extensions(t.extensions.1, &mut cert, t.issuer)
        .map_err(op("add the profile's extensions (X509V3_EXT_add_nconf)"))?;
    signer.lint_sign(&mut cert)?;
    super::clear_openssl_errors();
    Ok(cert)
}

/// A certificate built with the extensions of `extensions` for a throwaway P-256 key
/// under a throwaway CA (self-signed, with a subjectKeyIdentifier): what a profile
/// makes, seen before any token work. Signed by a throwaway key.
pub fn trial_certificate(extensions: (&ConfRef, &str)) -> anyhow::Result<X509> {
    use openssl::x509::extension::{BasicConstraints, SubjectKeyIdentifier};
    let p256 = KeySpec::Ec(openssl::nid::Nid::X9_62_PRIME256V1);
    let (ca_key, ca_public) = software_key(p256)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ca_name = name_from_entries([("CN", "hsm-demo profile trial CA")])?;
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let serial = openssl::bn::BigNum::from_u32(1)?.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&ca_name)?;
    b.set_issuer_name(&ca_name)?;
    let (from, until) = (Asn1Time::from_unix(now - 60)?, Asn1Time::from_unix(now + 2 * 86_400)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    b.set_pubkey(&ca_public)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.sign(&ca_key, MessageDigest::sha256())?;
    let issuer = b.build();
    let (_, public) = software_key(p256)?;
    let subject = name_from_entries([("CN", "hsm-demo profile trial")])?;
    let sign = |_: &[u8]| -> anyhow::Result<Vec<u8>> { anyhow::bail!("a trial certificate is never signed by a token") };
    let signer = TbsSigner::new(p256, MessageDigest::sha256(), &sign);
    let template = CertTemplate {
        issuer: &issuer,
        subject: &subject,
        public: &public,
        serial: &[0x01],
        not_before: now,
        not_after: now + 86_400,
        sans: &[],
        san_critical: false,
        extensions,
    };
    let cert = build_certificate(&template, &signer)?;
    super::clear_openssl_errors();
    Ok(cert)
}
