//! The two encodings of an ECDSA signature: DER ECDSA-Sig-Value (what `openssl dgst`
//! and X.509 use) and raw r||s (what PKCS#11 CKM_ECDSA returns, and JOSE), for any
//! curve's field size.

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;

/// Bytes of r and of s for P-256 (the unit tests' curve).
#[cfg(test)]
const P256_FIELD: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_der_round_trip_with_high_bits_and_short_components() {
        let mut raw = vec![0x80u8; 32];
        raw.extend([0x00, 0x01].iter().chain([0x7f; 30].iter()));
        let sig = EcdsaSignature::parse_for(&raw, P256_FIELD).unwrap();
        // r has its top bit set: DER needs a leading 0x00 (33-byte INTEGER); s has a
        // leading zero byte that DER drops (31-byte INTEGER).
        assert_eq!(sig.der()[3], 33);
        assert_eq!(sig.raw().unwrap(), raw);
        assert_eq!(EcdsaSignature::parse_for(sig.der(), P256_FIELD).unwrap(), sig);
    }

    #[test]
    fn malformed_signatures_are_named() {
        assert_eq!(EcdsaSignature::parse_for(&[], P256_FIELD), Err(SignatureFormatError::Empty));
        assert_eq!(
            EcdsaSignature::parse_for(&[1; 63], P256_FIELD),
            Err(SignatureFormatError::BadLength { len: 63, raw: 64 })
        );
        let sig = EcdsaSignature::parse_for(&[0x42; 64], P256_FIELD).unwrap();
        let der = sig.der();
        assert_eq!(
            EcdsaSignature::parse_for(&der[..der.len() - 3], P256_FIELD),
            Err(SignatureFormatError::BadDer { len: der.len() - 3 })
        );
        // Truncated to exactly 64 bytes, DER must still not pass as raw r||s.
        assert_eq!(
            EcdsaSignature::parse_for(&der[..64], P256_FIELD),
            Err(SignatureFormatError::BadDer { len: 64 })
        );
    }
}
