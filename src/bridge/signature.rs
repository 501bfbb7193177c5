//! ECDSA P-256 signing and verification with OpenSSL's EVP API, and the two encodings
//! of a signature: DER ECDSA-Sig-Value (what `openssl dgst` uses) and raw r||s (what
//! PKCS#11 CKM_ECDSA returns).

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::sign::{Signer, Verifier};

use super::BridgeError;

/// Bytes of r and of s for P-256.
pub const P256_FIELD: usize = 32;

/// A signature whose encoding has been checked; held as strict DER, with the curve's
/// field size (bytes of r and of s in the raw form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaSignature {
    der: Vec<u8>,
    field: usize,
}

/// Why bytes are not a P-256 ECDSA signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureFormatError {
    #[error("signature is empty")]
    Empty,
    #[error("signature starts like DER (0x30) but is not a valid ECDSA-Sig-Value ({len} bytes; truncated or corrupt)")]
    BadDer { len: usize },
    #[error("signature is {len} bytes: neither DER nor raw r||s (a raw signature of this curve is exactly {raw} bytes)")]
    BadLength { len: usize, raw: usize },
    #[error("signature component {which} is longer than {field} bytes, impossible for this curve")]
    TooLong { which: &'static str, field: usize },
}

impl EcdsaSignature {
    /// Accepts strict DER, or raw r||s of exactly 64 bytes (P-256).
    pub fn parse(bytes: &[u8]) -> Result<Self, SignatureFormatError> {
        Self::parse_for(bytes, P256_FIELD)
    }

    /// Accepts strict DER, or raw r||s of exactly 2 x `field` bytes.
    pub fn parse_for(bytes: &[u8], field: usize) -> Result<Self, SignatureFormatError> {
        if bytes.is_empty() {
            return Err(SignatureFormatError::Empty);
        }
        if let Some(sig) = Self::strict_der(bytes, field) {
            return Ok(sig);
        }
        // A 64-byte value that opens like an ECDSA-Sig-Value header is truncated DER,
        // not r||s (a raw r starting 30 3c..46 02 has odds below one in a million).
        let der_header = bytes.len() > 2
            && bytes[0] == 0x30
            && (0x3c..=0x46).contains(&bytes[1])
            && bytes[2] == 0x02;
        if bytes.len() == 2 * field && !der_header {
            return Self::from_raw(bytes, field);
        }
        if bytes[0] == 0x30 {
            return Err(SignatureFormatError::BadDer { len: bytes.len() });
        }
        Err(SignatureFormatError::BadLength {
            len: bytes.len(),
            raw: 2 * field,
        })
    }

    /// DER that parses and re-encodes to the same bytes (no BER leniency).
    fn strict_der(bytes: &[u8], field: usize) -> Option<Self> {
        let sig = EcdsaSig::from_der(bytes).ok()?;
        if sig.r().num_bytes() as usize > field || sig.s().num_bytes() as usize > field {
            return None;
        }
        let again = sig.to_der().ok()?;
        (again == bytes).then_some(EcdsaSignature { der: again, field })
    }

    fn from_raw(raw: &[u8], field: usize) -> Result<Self, SignatureFormatError> {
        let bad = |_| SignatureFormatError::BadLength {
            len: raw.len(),
            raw: 2 * field,
        };
        let (r, s) = raw.split_at(field);
        let r = BigNum::from_slice(r).map_err(bad)?;
        let s = BigNum::from_slice(s).map_err(bad)?;
        let sig = EcdsaSig::from_private_components(r, s).map_err(bad)?;
        Ok(EcdsaSignature {
            der: sig.to_der().map_err(bad)?,
            field,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// r||s, each left-padded to the field size.
    pub fn raw(&self) -> Result<Vec<u8>, SignatureFormatError> {
        let sig = EcdsaSig::from_der(&self.der).map_err(|_| SignatureFormatError::BadDer {
            len: self.der.len(),
        })?;
        let field = self.field;
        let pad = |n: &openssl::bn::BigNumRef, which| {
            n.to_vec_padded(field as i32)
                .map_err(|_| SignatureFormatError::TooLong { which, field })
        };
        let mut out = pad(sig.r(), "r")?;
        out.extend(pad(sig.s(), "s")?);
        Ok(out)
    }
}

/// EVP_DigestSign with SHA-256: the digest is computed by OpenSSL's default provider
/// (digests are blocked in pkcs11), the ECDSA operation by the key's provider, which
/// for a token key is C_Sign inside the token. `feed` hands the data in chunks.
pub fn sign_sha256(
    key: &PKeyRef<Private>,
    feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), BridgeError>) -> anyhow::Result<()>,
) -> anyhow::Result<EcdsaSignature> {
    let mut signer = start_signature(key)?;
    feed(&mut |chunk| {
        signer
            .update(chunk)
            .map_err(BridgeError::openssl("hash the data (EVP_DigestSignUpdate)"))
    })?;
    finish_signature(signer)
}

fn start_signature(key: &PKeyRef<Private>) -> Result<Signer<'_>, BridgeError> {
    super::clear_openssl_errors();
    Signer::new(MessageDigest::sha256(), key).map_err(BridgeError::openssl(
        "start the signature (EVP_DigestSignInit)",
    ))
}

fn finish_signature(signer: Signer) -> anyhow::Result<EcdsaSignature> {
    let der = signer.sign_to_vec().map_err(BridgeError::openssl(
        "sign in the token (EVP_DigestSignFinal)",
    ))?;
    EcdsaSignature::strict_der(&der, P256_FIELD).ok_or_else(|| {
        anyhow::anyhow!(
            "the provider returned a signature that is not strict DER: {}",
            hex::encode(&der)
        )
    })
}

/// EVP_DigestVerify with SHA-256 in OpenSSL's default provider.
pub fn verify_sha256<T: HasPublic>(
    key: &PKey<T>,
    signature: &EcdsaSignature,
    feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), BridgeError>) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    super::clear_openssl_errors();
    let mut verifier = Verifier::new(MessageDigest::sha256(), key)
        .map_err(BridgeError::openssl("start verification"))?;
    feed(&mut |chunk| {
        verifier
            .update(chunk)
            .map_err(BridgeError::openssl("hash the data"))
    })?;
    let ok = verifier
        .verify(signature.der())
        .map_err(BridgeError::openssl("verify the signature"))?;
    super::clear_openssl_errors();
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_der_round_trip_with_high_bits_and_short_components() {
        let mut raw = vec![0x80u8; 32];
        raw.extend([0x00, 0x01].iter().chain([0x7f; 30].iter()));
        let sig = EcdsaSignature::parse(&raw).unwrap();
        // r has its top bit set: DER needs a leading 0x00 (33-byte INTEGER); s has a
        // leading zero byte that DER drops (31-byte INTEGER).
        assert_eq!(sig.der()[3], 33);
        assert_eq!(sig.raw().unwrap(), raw);
        assert_eq!(EcdsaSignature::parse(sig.der()).unwrap(), sig);
    }

    #[test]
    fn malformed_signatures_are_named() {
        assert_eq!(EcdsaSignature::parse(&[]), Err(SignatureFormatError::Empty));
        assert_eq!(
            EcdsaSignature::parse(&[1; 63]),
            Err(SignatureFormatError::BadLength { len: 63, raw: 64 })
        );
        let sig = EcdsaSignature::parse(&[0x42; 64]).unwrap();
        let der = sig.der();
        assert_eq!(
            EcdsaSignature::parse(&der[..der.len() - 3]),
            Err(SignatureFormatError::BadDer { len: der.len() - 3 })
        );
        // Truncated to exactly 64 bytes, DER must still not pass as raw r||s.
        assert_eq!(
            EcdsaSignature::parse(&der[..64]),
            Err(SignatureFormatError::BadDer { len: 64 })
        );
    }
}
