//! The one way a token key signs. Every signature hsm-demo hands out (a `sign` output,
//! a certificate, a request, a CRL, a transcript) comes from [`SigningKey::sign`] or a
//! [`ThreadSigner`] that [`SigningKey::thread_signer`] made, and was verified with the
//! token's public key before it was returned: "checked before it leaves" is a
//! property of this type, not a habit of its callers. X.509 structures are signed over
//! their to-be-signed bytes through [`SigningKey::with_tbs_signer`], which calls
//! [`SigningKey::sign`]. This type alone decides whether the digest is made in the
//! token (hash-and-sign mechanism) or on the host (where the token lacks it).
//!
//! The provider key (`EVP_PKEY`) never leaves this file. The one unchecked path,
//! [`BenchSigner`], exists to time the token and is named for it: its signatures are
//! only sampled and verified by the benchmark, never written anywhere.

use std::marker::PhantomData;

use cryptoki::mechanism::MechanismType;
use openssl::pkey::{PKey, Private, Public};

use crate::bridge::{self, BridgeError, Digest, FetchedScheme, PreparedSigner, PreparedVerifier, Scheme};
use crate::token::KeyObject;

use super::software_spec;

/// A token-resident signing key as OpenSSL sees it: the private half through the
/// pkcs11-provider (every operation runs in the token), the public half from the
/// token's public key object in OpenSSL's default provider. Borrows its [`super::Hsm`].
pub struct SigningKey<'h> {
    object: KeyObject,
    /// The token's mechanism list, read when the key was loaded.
    mechanisms: Vec<MechanismType>,
    private: PKey<Private>,
    public: PKey<Public>,
    // The lifetime of the Hsm borrow, without its auto traits (the key is shared
    // across signing threads; the Hsm's session is not Sync).
    login: PhantomData<&'h ()>,
}

/// The token produced a signature its own public key does not verify.
fn bad_signature() -> anyhow::Error {
    anyhow::anyhow!("the token produced a signature that does not verify with its own public key")
}

impl<'h> SigningKey<'h> {
    pub(super) fn new(
        object: KeyObject,
        mechanisms: Vec<MechanismType>,
        private: PKey<Private>,
        public: PKey<Public>,
    ) -> Self {
        SigningKey { object, mechanisms, private, public, login: PhantomData }
    }

    pub fn object(&self) -> &KeyObject {
        &self.object
    }

    pub fn public(&self) -> &PKey<Public> {
        &self.public
    }

    /// The signature scheme of this key (see `bridge::Scheme::for_key`).
    pub fn scheme(&self, digest: Option<Digest>, padding: Option<bridge::RsaPadding>) -> Result<Scheme, bridge::SchemeError> {
        Scheme::for_key(&self.public, digest, padding)
    }

    /// Signs the data `feed` hands over with `scheme` (the digest in the token, or on the
    /// host where the token lacks the hash-and-sign mechanism) and checks it with the
    /// token's public key before returning it.
    pub fn sign(
        &self,
        scheme: Scheme,
        feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), BridgeError>) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<u8>> {
        bridge::sign_checked(&self.private, &self.public, scheme, self.digests_on_host(scheme), feed)
    }

    /// A signer for one thread: signing and verification contexts prepared once with
    /// `fetched` (its digest fetched once for the process), each signature copied from
    /// them and checked like [`SigningKey::sign`]'s.
    pub fn thread_signer<'k>(&'k self, fetched: &FetchedScheme) -> anyhow::Result<ThreadSigner<'k, 'h>> {
        let scheme = fetched.scheme();
        let prepared = match self.digests_on_host(scheme) {
            true => None,
            false => Some((fetched.prepare(&self.private)?, fetched.prepare_verify(&self.public)?)),
        };
        Ok(ThreadSigner { key: self, scheme, prepared })
    }

    /// Runs `f` with a [`bridge::TbsSigner`] for this key: its default scheme, the
    /// to-be-signed bytes signed (and checked) by [`SigningKey::sign`], a throwaway key
    /// of its kind for the lint copies.
    pub fn with_tbs_signer<R>(&self, f: impl FnOnce(&bridge::TbsSigner<'_>) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let scheme = self.scheme(None, None)?;
        let sign = |tbs: &[u8]| self.sign(scheme, |feed| Ok(feed(tbs)?));
        f(&bridge::TbsSigner::new(software_spec(&self.object.kind), scheme.x509_digest(), &sign))
    }

    /// An unchecked signer for `bench` path (a), which times the token: its signatures
    /// are sampled and verified by the benchmark outside the clock, never written.
    pub fn bench_signer<'k>(&'k self, fetched: &FetchedScheme, implicit_fetch: bool) -> anyhow::Result<BenchSigner<'k, 'h>> {
        let scheme = fetched.scheme();
        let host = self.digests_on_host(scheme);
        let prepared = match implicit_fetch || host {
            true => None,
            false => Some(fetched.prepare(&self.private)?),
        };
        Ok(BenchSigner { key: self, scheme, host, prepared })
    }

    /// Whether this key's signatures with `scheme` digest on the host: RSA on a token
    /// that lacks the hash-and-sign mechanism for the scheme's digest (opencryptoki's
    /// soft token has only CKM_RSA_PKCS and CKM_RSA_PKCS_PSS), where the provider's
    /// DigestSign path produced signatures that do not verify (docs/platform.md).
    pub fn digests_on_host(&self, scheme: Scheme) -> bool {
        let needed = match scheme {
            Scheme::RsaPkcs1 { digest, .. } => match digest {
                Digest::Sha256 => MechanismType::SHA256_RSA_PKCS,
                Digest::Sha384 => MechanismType::SHA384_RSA_PKCS,
                Digest::Sha512 => MechanismType::SHA512_RSA_PKCS,
            },
            Scheme::RsaPss { digest, .. } => match digest {
                Digest::Sha256 => MechanismType::SHA256_RSA_PKCS_PSS,
                Digest::Sha384 => MechanismType::SHA384_RSA_PKCS_PSS,
                Digest::Sha512 => MechanismType::SHA512_RSA_PKCS_PSS,
            },
            _ => return false,
        };
        !self.mechanisms.contains(&needed)
    }
}

/// One thread's checked signer (see [`SigningKey::thread_signer`]).
pub struct ThreadSigner<'k, 'h> {
    key: &'k SigningKey<'h>,
    scheme: Scheme,
    /// Prepared contexts; None where the digest is made on the host (then each
    /// signature goes through [`SigningKey::sign`]).
    prepared: Option<(PreparedSigner, PreparedVerifier)>,
}

impl ThreadSigner<'_, '_> {
    /// A checked signature over `data`.
    pub fn sign(&mut self, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        let Some((signer, verifier)) = self.prepared.as_mut() else {
            return self.key.sign(self.scheme, |feed| Ok(feed(data)?));
        };
        let sig = signer.sign(data).map_err(BridgeError::openssl("sign in the token (EVP_DigestSign)"))?;
        match verifier.verify(&sig, data).map_err(BridgeError::openssl("verify the signature"))? {
            true => Ok(sig),
            false => Err(bad_signature()),
        }
    }
}

/// `bench` path (a): EVP_DigestSign through the provider, unchecked per signature.
pub struct BenchSigner<'k, 'h> {
    key: &'k SigningKey<'h>,
    scheme: Scheme,
    host: bool,
    prepared: Option<PreparedSigner>,
}

impl BenchSigner<'_, '_> {
    /// One signature for timing: prepared context, or an implicit fetch per signature
    /// (`bench --implicit-fetch`), or the host digest where the token needs it.
    pub fn sign(&mut self, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self.prepared.as_mut() {
            Some(p) => Ok(p.sign(data).map_err(BridgeError::openssl("sign in the token (EVP_DigestSign, prepared context)"))?),
            None => bridge::sign_message(&self.key.private, self.scheme, self.host, data),
        }
    }
}
