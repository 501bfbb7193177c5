//! ECDSA P-256 signing and verification with OpenSSL's EVP API, and the two encodings
//! of a signature: DER ECDSA-Sig-Value (what `openssl dgst` uses) and raw r||s (what
//! PKCS#11 CKM_ECDSA returns).

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::sign::{Signer, Verifier};

use super::BridgeError;

/// Bytes of r and of s for P-256.
pub const P256_FIELD: usize = 32;

/// A signature whose encoding has been checked; held as strict DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaSignature {
    der: Vec<u8>,
}

/// Why bytes are not a P-256 ECDSA signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureFormatError {
    #[error("signature is empty")]
    Empty,
    #[error("signature starts like DER (0x30) but is not a valid ECDSA-Sig-Value ({len} bytes; truncated or corrupt)")]
    BadDer { len: usize },
    #[error("signature is {len} bytes: neither DER nor raw r||s (a raw P-256 signature is exactly 64 bytes)")]
    BadLength { len: usize },
    #[error("signature component {which} is longer than 32 bytes, impossible for P-256")]
    TooLong { which: &'static str },
}

impl EcdsaSignature {
    /// Accepts strict DER, or raw r||s of exactly 64 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, SignatureFormatError> {
        if bytes.is_empty() {
            return Err(SignatureFormatError::Empty);
        }
        if let Some(sig) = Self::strict_der(bytes) {
            return Ok(sig);
        }
        // A 64-byte value that opens like an ECDSA-Sig-Value header is truncated DER,
        // not r||s (a raw r starting 30 3c..46 02 has odds below one in a million).
        let der_header = bytes.len() > 2
            && bytes[0] == 0x30
            && (0x3c..=0x46).contains(&bytes[1])
            && bytes[2] == 0x02;
        if bytes.len() == 2 * P256_FIELD && !der_header {
            return Self::from_raw(bytes);
        }
        if bytes[0] == 0x30 {
            return Err(SignatureFormatError::BadDer { len: bytes.len() });
        }
        Err(SignatureFormatError::BadLength { len: bytes.len() })
    }

    /// DER that parses and re-encodes to the same bytes (no BER leniency).
    fn strict_der(bytes: &[u8]) -> Option<Self> {
        let sig = EcdsaSig::from_der(bytes).ok()?;
        if sig.r().num_bytes() as usize > P256_FIELD || sig.s().num_bytes() as usize > P256_FIELD {
            return None;
        }
        let again = sig.to_der().ok()?;
        (again == bytes).then_some(EcdsaSignature { der: again })
    }

    fn from_raw(raw: &[u8]) -> Result<Self, SignatureFormatError> {
        let (r, s) = raw.split_at(P256_FIELD);
        let bn = |b: &[u8]| BigNum::from_slice(b).expect("BN_bin2bn on 32 bytes");
        let sig = EcdsaSig::from_private_components(bn(r), bn(s)).expect("ECDSA_SIG_set0");
        Ok(EcdsaSignature {
            der: sig.to_der().expect("i2d_ECDSA_SIG"),
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// r||s, each left-padded to 32 bytes.
    pub fn raw(&self) -> Result<Vec<u8>, SignatureFormatError> {
        let sig = EcdsaSig::from_der(&self.der).map_err(|_| SignatureFormatError::BadDer {
            len: self.der.len(),
        })?;
        let pad = |n: &openssl::bn::BigNumRef, which| {
            n.to_vec_padded(P256_FIELD as i32)
                .map_err(|_| SignatureFormatError::TooLong { which })
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

/// EVP_PKEY_sign over a digest computed by the caller.
fn sign_digest(key: &PKeyRef<Private>, digest: &[u8]) -> anyhow::Result<EcdsaSignature> {
    let mut ctx = PkeyCtx::new(key).map_err(BridgeError::openssl("start the signature (EVP_PKEY_sign_init)"))?;
    ctx.sign_init()
        .map_err(BridgeError::openssl("start the signature (EVP_PKEY_sign_init)"))?;
    let mut der = Vec::new();
    ctx.sign_to_vec(digest, &mut der)
        .map_err(BridgeError::openssl("sign in the token (EVP_PKEY_sign)"))?;
    strict(der)
}

fn strict(der: Vec<u8>) -> anyhow::Result<EcdsaSignature> {
    EcdsaSignature::strict_der(&der).ok_or_else(|| {
        anyhow::anyhow!(
            "the provider returned a signature that is not strict DER: {}",
            hex::encode(&der)
        )
    })
}

fn finish_signature(signer: Signer) -> anyhow::Result<EcdsaSignature> {
    let der = signer.sign_to_vec().map_err(BridgeError::openssl(
        "sign in the token (EVP_DigestSignFinal)",
    ))?;
    strict(der)
}

/// [`sign_sha256`], and the signature checked with `public` (in the default provider)
/// before it is returned: a faulty token or path must not hand out bad signatures. The
/// data streams through the signer and the verifier together, so any amount of input
/// takes constant memory.
pub fn sign_sha256_checked<T: HasPublic>(
    key: &PKeyRef<Private>,
    public: &PKey<T>,
    feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), BridgeError>) -> anyhow::Result<()>,
) -> anyhow::Result<EcdsaSignature> {
    let mut signer = start_signature(key)?;
    let mut verifier = Verifier::new(MessageDigest::sha256(), public)
        .map_err(BridgeError::openssl("start verification"))?;
    let mut fed = 0usize;
    feed(&mut |chunk| {
        fed += chunk.len();
        signer
            .update(chunk)
            .map_err(BridgeError::openssl("hash the data (EVP_DigestSignUpdate)"))?;
        verifier
            .update(chunk)
            .map_err(BridgeError::openssl("hash the data"))
    })?;
    let signature = if fed == 0 {
        // pkcs11-provider 1.0 fails EVP_DigestSignFinal when no data was given (the
        // openssl CLI's `dgst -sign` of an empty file fails the same way); the
        // signature over no data is the signature over SHA-256(""), so sign that digest
        // with EVP_PKEY_sign (CKM_ECDSA in the token, as the digest-sign path uses).
        drop(signer);
        sign_digest(key, &openssl::sha::sha256(b""))?
    } else {
        finish_signature(signer)?
    };
    let ok = verifier
        .verify(signature.der())
        .map_err(BridgeError::openssl("verify the signature"))?;
    super::clear_openssl_errors();
    if !ok {
        anyhow::bail!(
            "the token produced a signature that does not verify with its own public key"
        );
    }
    Ok(signature)
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
            Err(SignatureFormatError::BadLength { len: 63 })
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
