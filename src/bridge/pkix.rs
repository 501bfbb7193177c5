//! The PKIX objects a CA makes: PKCS#10 requests, certificates issued from a request
//! and a profile, CRLs. Each is built with OpenSSL's API and first signed with a
//! throwaway in-memory key of the token key's kind, so that what is checked (linted)
//! before the token signs is the finished structure, as CA/Browser Forum ballot SC-75
//! and Boulder's ceremony tool require. Then the token signs the exact to-be-signed
//! bytes through the provider ([`TbsSigner`]), the throwaway signature is replaced
//! ([`resign`]), and OpenSSL parses and verifies the result.

use std::cell::OnceCell;
use std::net::IpAddr;

use openssl::conf::ConfRef;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Name, X509NameBuilder, X509NameRef, X509Req, X509ReqBuilder, X509Builder, X509};

use super::ffi::{self, ConfExt as _};
use super::x509::{software_key, KeySpec};
use super::BridgeError;

/// Signs to-be-signed bytes with the token key, and knows the throwaway key that
/// stands in for it while a structure is built and checked.
pub struct TbsSigner<'a> {
    /// The throwaway key's kind: the token key's algorithm (the AlgorithmIdentifier
    /// depends on the algorithm and digest, not on the key).
    spec: KeySpec,
    digest: MessageDigest,
    sign: &'a dyn Fn(&[u8]) -> anyhow::Result<Vec<u8>>,
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

    fn throwaway(&self) -> anyhow::Result<&PKey<Private>> {
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

/// The few DER operations assembling a Certificate needs (X.690 §8.1).
pub mod der {
    /// The length of the TLV at the start of `b` (tag, length octets and contents).
    pub fn tlv_len(b: &[u8]) -> Option<usize> {
        let (header, len) = header(b)?;
        let total = header.checked_add(len)?;
        (total <= b.len()).then_some(total)
    }

    /// The contents of the TLV at the start of `b`.
    pub fn contents(b: &[u8]) -> Option<&[u8]> {
        let (header, len) = header(b)?;
        b.get(header..header.checked_add(len)?)
    }

    fn header(b: &[u8]) -> Option<(usize, usize)> {
        let first = *b.get(1)?;
        if first < 0x80 {
            return Some((2, usize::from(first)));
        }
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b.get(2..2 + n)?.iter().fold(0usize, |a, d| (a << 8) | usize::from(*d));
        Some((2 + n, len))
    }

    /// An INTEGER from unsigned big-endian bytes (a leading zero byte added when the
    /// top bit is set; leading zero bytes dropped).
    pub fn integer(unsigned: &[u8]) -> Vec<u8> {
        let start = unsigned.iter().position(|b| *b != 0).unwrap_or(unsigned.len().saturating_sub(1));
        let mut v = Vec::with_capacity(unsigned.len() + 1);
        if unsigned.get(start).is_none_or(|b| b & 0x80 != 0) {
            v.push(0);
        }
        v.extend_from_slice(unsigned.get(start..).unwrap_or_default());
        tlv(0x02, &v)
    }

    /// Time (RFC 5280 §5.1.2.4, §4.1.2.5): UTCTime YYMMDDHHMMSSZ for 1950 to 2049,
    /// GeneralizedTime YYYYMMDDHHMMSSZ otherwise.
    pub fn time(unix: i64) -> anyhow::Result<Vec<u8>> {
        let t = time::OffsetDateTime::from_unix_timestamp(unix)?;
        let (y, rest) = (
            t.year(),
            format!("{:02}{:02}{:02}{:02}{:02}Z", u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()),
        );
        Ok(if (1950..2050).contains(&y) {
            tlv(0x17, format!("{:02}{rest}", y % 100).as_bytes())
        } else {
            tlv(0x18, format!("{y:04}{rest}").as_bytes())
        })
    }

    /// The to-be-signed part and the AlgorithmIdentifier of a signed structure
    /// `SEQUENCE { tbs, algorithm, BIT STRING }`, each as a whole TLV.
    pub fn signed_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
        let body = contents(der)?;
        let (tbs, rest) = body.split_at(tlv_len(body)?);
        Some((tbs, &rest[..tlv_len(rest)?]))
    }

    /// `SEQUENCE { tbs, algorithm, BIT STRING signature }` (no unused bits).
    pub fn signed(tbs: &[u8], alg: &[u8], signature: &[u8]) -> Vec<u8> {
        let mut bits = Vec::with_capacity(signature.len() + 1);
        bits.push(0);
        bits.extend_from_slice(signature);
        let mut inner = Vec::with_capacity(tbs.len() + alg.len() + bits.len() + 8);
        inner.extend_from_slice(tbs);
        inner.extend_from_slice(alg);
        inner.extend(tlv(0x03, &bits));
        tlv(0x30, &inner)
    }

    pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(contents);
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn lengths_round_trip_short_and_long_forms() {
            for n in [0usize, 1, 127, 128, 255, 256, 70_000] {
                let t = super::tlv(0x04, &vec![7u8; n]);
                assert_eq!(super::tlv_len(&t), Some(t.len()), "{n}");
                assert_eq!(super::contents(&t).map(<[u8]>::len), Some(n));
            }
            assert_eq!(super::tlv_len(&[0x30, 0x05, 1, 2]), None, "truncated");
        }

        #[test]
        fn integers_and_times_as_der_wants_them() {
            assert_eq!(super::integer(&[0x00, 0x7f]), [0x02, 0x01, 0x7f]);
            assert_eq!(super::integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
            assert_eq!(super::integer(&[0x00]), [0x02, 0x01, 0x00]);
            assert_eq!(super::time(1_704_164_645).unwrap(), [&[0x17, 13][..], b"240102030405Z"].concat());
            assert_eq!(super::time(2_556_143_999).unwrap(), [&[0x18, 15][..], b"20501231235959Z"].concat());
        }
    }
}

/// A distinguished name in the form `openssl req -subj` takes: `/C=US/O=Example/CN=Name`
/// (a `/` inside a value written `\/`).
pub fn parse_dn(text: &str) -> Result<X509Name, String> {
    let body = text
        .strip_prefix('/')
        .ok_or_else(|| format!("subject '{text}' is not in the form /C=US/O=Example/CN=Name"))?;
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.push(chars.next().ok_or_else(|| format!("subject '{text}' ends with a lone backslash"))?),
            '/' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let mut name = X509NameBuilder::new().map_err(|e| e.to_string())?;
    for part in parts {
        let (field, value) = part
            .split_once('=')
            .ok_or_else(|| format!("subject part '{part}' is not FIELD=value"))?;
        if value.is_empty() {
            return Err(format!("subject field {field} is empty"));
        }
        name.append_entry_by_text(field, value)
            .map_err(|_| format!("subject field '{field}' is not one OpenSSL knows (C, ST, L, O, OU, CN, ...)"))?;
    }
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
    pub fn parse(text: &str) -> Result<AltName, String> {
        let (kind, value) = text
            .split_once(':')
            .ok_or_else(|| format!("--san '{text}' is not TYPE:value (DNS:, IP:, email:, URI:)"))?;
        if value.is_empty() {
            return Err(format!("--san '{text}' has an empty value"));
        }
        match kind.to_ascii_lowercase().as_str() {
            "dns" => Ok(AltName::Dns(value.to_string())),
            "ip" => value.parse().map(AltName::Ip).map_err(|_| format!("--san '{text}': not an IP address")),
            "email" => Ok(AltName::Email(value.to_string())),
            "uri" => Ok(AltName::Uri(value.to_string())),
            other => Err(format!("--san type '{other}' is not one of DNS, IP, email, URI")),
        }
    }

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

/// The subjectAltName entries a request asks for; `Err` names an entry of a kind
/// hsm-demo does not issue (otherName, directoryName, ...).
pub fn requested_alt_names(req: &X509Req) -> Result<Vec<AltName>, String> {
    let Some(names) = ffi::requested_alt_names(req).map_err(|e| format!("the request's extensions do not decode: {e}"))? else {
        return Ok(Vec::new());
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
                    _ => Err("an iPAddress subjectAltName that is not 4 or 16 bytes".to_string()),
                }
            } else if let Some(e) = n.email() {
                Ok(AltName::Email(e.to_string()))
            } else if let Some(u) = n.uri() {
                Ok(AltName::Uri(u.to_string()))
            } else {
                Err("a subjectAltName entry that is not DNS, IP, email or URI".to_string())
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
    let mut req = b.build();
    ffi::sign_request(&mut req, signer.throwaway()?, signer.digest).map_err(op("sign the request (X509_REQ_sign)"))?;
    let der = req.to_der().map_err(op("encode the request"))?;
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
        let ext = alt_names_builder(t.sans)
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

/// The revokedCertificates of a CRL, DER-encoded as they are added (RFC 5280 §5.1):
/// a million entries take about 66 MB here, where as many X509_REVOKED objects took
/// about 900 MB and most of the time (measured: README, "Benchmarks").
#[derive(Default)]
pub struct RevokedList {
    der: Vec<u8>,
    count: usize,
}

impl RevokedList {
    /// One entry: the serial (unsigned big-endian), the revocation time, and the
    /// CRLReason code (RFC 5280 §5.3.1; None: no reasonCode extension, as the RFC
    /// recommends for unspecified).
    pub fn push(&mut self, serial: &[u8], revoked_at: i64, reason: Option<u8>) -> anyhow::Result<()> {
        let mut entry = Vec::with_capacity(48);
        entry.extend(der::integer(serial));
        entry.extend(der::time(revoked_at)?);
        if let Some(code) = reason {
            // Extensions ::= SEQUENCE { Extension { extnID 2.5.29.21, extnValue OCTET
            // STRING { ENUMERATED code } } }
            entry.extend_from_slice(&[0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, code]);
        }
        self.der.extend(der::tlv(0x30, &entry));
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.count
    }
}

/// A CRL of `revoked` from `issuer`, signed by the token key. OpenSSL builds the CRL
/// (X509_CRL: version, signature algorithm, issuer, thisUpdate, nextUpdate, cRLNumber,
/// authorityKeyIdentifier) and signs it with the throwaway key; the entries go into its
/// TBSCertList before the crlExtensions, and the token signs that TBSCertList (the
/// signature checked with the token's public key in the same pass). Returns the DER.
pub fn build_crl(
    issuer: &X509,
    updates: (i64, i64),
    number: u64,
    revoked: &RevokedList,
    extensions: (&ConfRef, &str),
    signer: &TbsSigner<'_>,
) -> anyhow::Result<Vec<u8>> {
    let op = BridgeError::openssl;
    let number = der::integer(&number.to_be_bytes());
    let header = ffi::build_crl_header(issuer, updates, &number, extensions, (signer.throwaway()?, signer.digest))
        .map_err(op("build the CRL (X509_CRL)"))?;
    let der = header.to_der().map_err(op("encode the CRL"))?;
    let malformed = || anyhow::anyhow!("OpenSSL encoded a CRL this code does not expect");
    let (tbs, alg) = der::signed_parts(&der).ok_or_else(malformed)?;
    // TBSCertList: version, signature, issuer, thisUpdate, nextUpdate, then
    // [0] crlExtensions; the revokedCertificates SEQUENCE goes before the [0].
    let mut fields = der::contents(tbs).ok_or_else(malformed)?;
    let mut new_tbs = Vec::with_capacity(fields.len() + revoked.der.len() + 8);
    let mut inserted = revoked.count == 0;
    while !fields.is_empty() {
        let n = der::tlv_len(fields).ok_or_else(malformed)?;
        if fields[0] == 0xa0 && !inserted {
            new_tbs.extend(der::tlv(0x30, &revoked.der));
            inserted = true;
        }
        new_tbs.extend_from_slice(&fields[..n]);
        fields = &fields[n..];
    }
    if !inserted {
        return Err(malformed());
    }
    let tbs = der::tlv(0x30, &new_tbs);
    drop(new_tbs);
    let signed = der::signed(&tbs, alg, &(signer.sign)(&tbs)?);
    super::clear_openssl_errors();
    Ok(signed)
}

/// An issuance profile: an OpenSSL config whose `[hsm_demo_profile]` section says which
/// extensions section to apply and what the request may bring (the openssl CLI ignores
/// that section and takes the extensions section with `-extfile F -extensions S`).
pub struct IssueProfile {
    pub name: String,
    conf: openssl::conf::Conf,
    text: String,
    pub extensions: String,
    pub ca: bool,
    pub default_days: u32,
    pub max_days: Option<u32>,
    /// subjectAltName kinds taken from the request (`dns`, `ip`, `email`, `uri`).
    pub san: Vec<String>,
    pub san_required: bool,
}

/// The profiles hsm-demo ships (`openssl-conf/profiles/`).
pub const SHIPPED_PROFILES: [(&str, &str); 3] = [
    ("subordinate-ca", include_str!("../../openssl-conf/profiles/subordinate-ca.cnf")),
    ("tls-server", include_str!("../../openssl-conf/profiles/tls-server.cnf")),
    ("tls-client", include_str!("../../openssl-conf/profiles/tls-client.cnf")),
];

impl IssueProfile {
    pub fn from_text(name: &str, text: &str) -> Result<IssueProfile, String> {
        let conf = ffi::parse_config_text(text).map_err(|e| format!("profile {name}: {e}"))?;
        let get = |k: &str| conf.get("hsm_demo_profile", k);
        let extensions = get("extensions")
            .ok_or_else(|| format!("profile {name} has no [hsm_demo_profile] extensions = SECTION"))?;
        if conf.section(&extensions).is_none() {
            return Err(format!("profile {name}: no section [{extensions}]"));
        }
        let yes = |k: &str| -> Result<bool, String> {
            match get(k).as_deref().map(str::trim) {
                None | Some("no") | Some("") => Ok(false),
                Some("yes") => Ok(true),
                Some(v) => Err(format!("profile {name}: {k} = {v}: not yes or no")),
            }
        };
        let days = |k: &str| -> Result<Option<u32>, String> {
            get(k)
                .map(|v| v.trim().parse::<u32>().map_err(|_| format!("profile {name}: {k} = {v}: not a number of days")))
                .transpose()
        };
        let san: Vec<String> = get("san")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(bad) = san.iter().find(|s| !["dns", "ip", "email", "uri"].contains(&s.as_str())) {
            return Err(format!("profile {name}: san kind '{bad}' is not dns, ip, email or uri"));
        }
        Ok(IssueProfile {
            name: name.to_string(),
            extensions,
            ca: yes("ca")?,
            default_days: days("default_days")?.unwrap_or(365),
            max_days: days("max_days")?,
            san,
            san_required: yes("san_required")?,
            text: text.to_string(),
            conf,
        })
    }

    /// The extensions section's (name, value) pairs.
    pub fn extension_lines(&self) -> Vec<(String, String)> {
        self.conf.section(&self.extensions).unwrap_or_default()
    }

    /// The config and section to apply: the profile's own section, or, for a CA with a
    /// path length, a copy whose basicConstraints carries `pathlen:N` (added to the
    /// profile's text, so sections it refers to still resolve).
    pub fn effective(&self, path_len: Option<u32>) -> Result<(openssl::conf::Conf, String), String> {
        let mut text = self.text.clone();
        let section = "hsm_demo_effective_ext";
        text.push_str(&format!("\n[ {section} ]\n"));
        for (k, v) in self.extension_lines() {
            let v = match (k.as_str(), path_len) {
                ("basicConstraints", Some(n)) if self.ca => {
                    let kept: Vec<&str> = v.split(',').map(str::trim).filter(|p| !p.starts_with("pathlen")).collect();
                    format!("{}, pathlen:{n}", kept.join(", "))
                }
                _ => v,
            };
            text.push_str(&format!("{k} = {v}\n"));
        }
        Ok((ffi::parse_config_text(&text)?, section.to_string()))
    }
}

/// The extensions of a CRL: authorityKeyIdentifier (RFC 5280 §5.2.1, required), through
/// the same X.509v3 config machinery.
pub fn crl_extensions() -> Result<openssl::conf::Conf, String> {
    ffi::parse_config_text("[ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n")
}
