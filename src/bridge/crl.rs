//! CRLs (RFC 5280 §5): OpenSSL's X509_CRL builds the header and extensions, the
//! entries are DER the caller encoded, and the token signs the TBSCertList.

use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::x509::{X509Crl, X509CrlBuilder, X509Extension, X509};

use super::der;
use super::pkix::TbsSigner;
use super::BridgeError;

/// The issuingDistributionPoint of a CRL (RFC 5280 §5.2.5): where it is published,
/// and whether it covers CA certificates only (an ARL, a root's CRL).
#[derive(Debug, Default, Clone, Copy)]
pub struct Idp<'a> {
    pub url: Option<&'a str>,
    pub only_ca: bool,
}

impl Idp<'_> {
    /// The extension's value, if it has anything to say.
    fn der(&self) -> Option<Vec<u8>> {
        if self.url.is_none() && !self.only_ca {
            return None;
        }
        let mut seq = Vec::new();
        if let Some(url) = self.url {
            // distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } }
            seq.extend(der::tlv(0xa0, &der::tlv(0xa0, &der::tlv(0x86, url.as_bytes()))));
        }
        if self.only_ca {
            // onlyContainsCACerts [2] BOOLEAN TRUE
            seq.extend([0x82, 0x01, 0xff]);
        }
        Some(der::tlv(0x30, &seq))
    }
}

/// The revokedCertificates of a CRL as DER (each entry `SEQUENCE { serial, time,
/// extensions }`, concatenated) and how many there are: the caller (`ca::crl`) encodes
/// them as it reads the records.
pub struct RevokedEntries<'a> {
    pub der: &'a [u8],
    pub count: usize,
}

/// A CRL v2 (RFC 5280 §5.1) without entries, built with the openssl crate's
/// X509CrlBuilder: issuer name, thisUpdate, nextUpdate, cRLNumber and
/// authorityKeyIdentifier (the issuer's subjectKeyIdentifier, RFC 5280 §5.2.1), signed
/// by the throwaway key ([`build_crl`] adds the entries and the token signs).
fn crl_header(issuer: &X509, (this_update, next_update): (i64, i64), number: u64, idp: &Idp<'_>, signer: &TbsSigner<'_>) -> anyhow::Result<X509Crl> {
    let mut b = X509CrlBuilder::new()?;
    b.set_issuer_name(issuer.subject_name())?;
    let (this, next) = (Asn1Time::from_unix(this_update)?, Asn1Time::from_unix(next_update)?);
    b.set_last_update(&this)?;
    b.set_next_update(&next)?;
    // cRLNumber (RFC 5280 §5.2.3): a non-critical INTEGER.
    b.append_extension(extension("2.5.29.20", &der::integer(&number.to_be_bytes()))?)?;
    // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
    let ski = issuer
        .subject_key_id()
        .ok_or_else(|| anyhow::anyhow!("the CA certificate has no subjectKeyIdentifier for the CRL's authorityKeyIdentifier"))?;
    let aki = der::tlv(0x30, &der::tlv(0x80, ski.as_slice()));
    b.append_extension(extension("2.5.29.35", &aki)?)?;
    if let Some(value) = idp.der() {
        // issuingDistributionPoint (RFC 5280 §5.2.5): critical.
        let oid = Asn1Object::from_str("2.5.29.28")?;
        let value = Asn1OctetString::new_from_bytes(&value)?;
        b.append_extension(X509Extension::new_from_der(&oid, true, &value)?)?;
    }
    b.sign(signer.throwaway()?, signer.digest)?;
    Ok(b.build()?)
}

/// A non-critical extension of `oid` whose extnValue holds `der`.
fn extension(oid: &str, der: &[u8]) -> Result<X509Extension, openssl::error::ErrorStack> {
    let oid = Asn1Object::from_str(oid)?;
    let value = Asn1OctetString::new_from_bytes(der)?;
    X509Extension::new_from_der(&oid, false, &value)
}

/// A CRL of `revoked` from `issuer`, signed by the token key. OpenSSL builds the CRL
/// (X509_CRL: version, signature algorithm, issuer, thisUpdate, nextUpdate, cRLNumber,
/// authorityKeyIdentifier) and signs it with the throwaway key; the entries go into its
/// TBSCertList before the crlExtensions, and the token signs that TBSCertList (the
/// signature checked with the token's public key in the same pass). Returns the DER.
pub fn build_crl(
    issuer: &X509,
    (updates, number, idp): ((i64, i64), u64, &Idp<'_>),
    revoked: &RevokedEntries<'_>,
    signer: &TbsSigner<'_>,
) -> anyhow::Result<Vec<u8>> {
    let op = BridgeError::openssl;
    let header = crl_header(issuer, updates, number, idp, signer)?;
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
            new_tbs.extend(der::tlv(0x30, revoked.der));
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

