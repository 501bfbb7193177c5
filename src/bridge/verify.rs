//! Verification in OpenSSL's default provider (no token involved).

use openssl::pkey::{HasPublic, PKey};
use openssl::sign::Verifier;

use super::scheme::Feed;
use super::{BridgeError, Scheme};

/// Verifies `signature` (as [`Scheme::parse_signature`] returned it) over what `feed`
/// hands over, in OpenSSL's default provider.
pub fn verify<T: HasPublic>(
    public: &PKey<T>,
    scheme: Scheme,
    signature: &[u8],
    feed: impl FnOnce(Feed) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    super::clear_openssl_errors();
    let Some(digest) = scheme.digest() else {
        let mut message = Vec::new();
        feed(&mut |chunk| {
            message.extend_from_slice(chunk);
            Ok(())
        })?;
        return Ok(verify_whole(public, signature, &message)?);
    };
    let mut verifier = Verifier::new(digest.md(), public)
        .map_err(BridgeError::openssl("start verification"))?;
    scheme.configure_verifier(&mut verifier)?;
    feed(&mut |chunk| {
        verifier
            .update(chunk)
            .map_err(BridgeError::openssl("hash the data"))
    })?;
    // A malformed signature is a failed verification, not an OpenSSL failure.
    let ok = verifier.verify(signature).unwrap_or(false);
    super::clear_openssl_errors();
    Ok(ok)
}

pub(super) fn verify_whole<T: HasPublic>(public: &PKey<T>, sig: &[u8], message: &[u8]) -> Result<bool, BridgeError> {
    let mut v = Verifier::new_without_digest(public)
        .map_err(BridgeError::openssl("start verification"))?;
    let ok = v
        .verify_oneshot(sig, message)
        .map_err(BridgeError::openssl("verify the signature"))?;
    super::clear_openssl_errors();
    Ok(ok)
}

