//! Prepared signing and verification contexts: a scheme's digest fetched once for the
//! process, and per thread one context initialised once and copied per signature.

use openssl::error::ErrorStack;
use openssl::md::Md;
use openssl::md_ctx::MdCtx;
use openssl::pkey::{HasPublic, PKeyRef, Private};
use openssl::pkey_ctx::PkeyCtxRef;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;

use super::{BridgeError, Digest, Scheme};

/// A scheme with its digest fetched once for the process (`EVP_MD_fetch`: OpenSSL 3.0's
/// implicit fetch inside every `EVP_DigestSignInit` takes the method store's lock, which
/// bounds signing threads in one process; OpenSSL's "Performance" guide: fetch
/// explicitly, reuse), from which each thread prepares its own contexts.
pub struct FetchedScheme {
    scheme: Scheme,
    md: Option<Md>,
}

impl Scheme {
    pub fn fetched(self) -> Result<FetchedScheme, BridgeError> {
        let md = self
            .digest()
            .map(|d| {
                let name = match d {
                    Digest::Sha256 => "SHA2-256",
                    Digest::Sha384 => "SHA2-384",
                    Digest::Sha512 => "SHA2-512",
                };
                Md::fetch(None, name, None)
            })
            .transpose()
            .map_err(BridgeError::openssl("fetch the digest (EVP_MD_fetch)"))?;
        Ok(FetchedScheme { scheme: self, md })
    }
}

/// The RSA padding of a DigestSign/DigestVerify context just initialised.
fn set_padding<T>(pctx: &mut PkeyCtxRef<T>, scheme: Scheme, md: Option<&Md>) -> Result<(), ErrorStack> {
    match (scheme, md) {
        (Scheme::RsaPkcs1 { .. }, _) => pctx.set_rsa_padding(Padding::PKCS1),
        (Scheme::RsaPss { .. }, Some(md)) => {
            pctx.set_rsa_padding(Padding::PKCS1_PSS)?;
            pctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            pctx.set_rsa_mgf1_md(md)
        }
        _ => Ok(()),
    }
}

impl FetchedScheme {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// A verification context for `key`, initialised once.
    pub fn prepare_verify<T: HasPublic>(&self, key: &PKeyRef<T>) -> Result<PreparedVerifier, BridgeError> {
        let (template, work) = self.contexts("prepare the verification context (EVP_DigestVerifyInit)", |ctx, md| {
            ctx.digest_verify_init(md, key).and_then(|p| set_padding(p, self.scheme, self.md.as_ref()))
        })?;
        Ok(PreparedVerifier { template, work })
    }

    /// A signing context for `key` initialised once: EVP_DigestSignInit with the fetched
    /// digest and the scheme's padding; each signature copies it.
    pub fn prepare(&self, key: &PKeyRef<Private>) -> Result<PreparedSigner, BridgeError> {
        let (template, work) = self.contexts("prepare the signing context (EVP_DigestSignInit)", |ctx, md| {
            ctx.digest_sign_init(md, key).and_then(|p| set_padding(p, self.scheme, self.md.as_ref()))
        })?;
        Ok(PreparedSigner { template, work, max_len: key.size() })
    }

    /// A template context initialised by `init` (with the fetched digest) and a work
    /// context to copy it into.
    fn contexts(
        &self,
        op: &'static str,
        init: impl FnOnce(&mut MdCtx, Option<&openssl::md::MdRef>) -> Result<(), ErrorStack>,
    ) -> Result<(MdCtx, MdCtx), BridgeError> {
        let mut template = MdCtx::new().map_err(BridgeError::openssl(op))?;
        init(&mut template, self.md.as_deref()).map_err(BridgeError::openssl(op))?;
        let work = MdCtx::new().map_err(BridgeError::openssl("allocate a digest context"))?;
        Ok((template, work))
    }
}


/// A DigestSign context initialised once for one key and scheme (the key's provider,
/// keymgmt and signature implementation resolved then); every signature starts from a
/// copy of it (`EVP_MD_CTX_copy_ex`), so no fetch happens per signature. One per thread.
pub struct PreparedSigner {
    template: MdCtx,
    work: MdCtx,
    max_len: usize,
}

impl PreparedSigner {
    /// One signature over `data`, not checked here (the token-key signer that uses it
    /// checks each one).
    pub fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        super::ffi::md_ctx_copy(&mut self.work, &self.template)?;
        let mut sig = vec![0u8; self.max_len];
        let len = self.work.digest_sign(data, Some(&mut sig))?;
        sig.truncate(len);
        Ok(sig)
    }
}

/// A DigestVerify context initialised once for one public key and scheme; every check
/// starts from a copy of it, like [`PreparedSigner`]. One per thread.
pub struct PreparedVerifier {
    template: MdCtx,
    work: MdCtx,
}

impl PreparedVerifier {
    /// Whether `sig` is a valid signature over `data`.
    pub fn verify(&mut self, sig: &[u8], data: &[u8]) -> Result<bool, ErrorStack> {
        super::ffi::md_ctx_copy(&mut self.work, &self.template)?;
        // A signature that does not verify is false, not an error; neither is left on
        // the error queue.
        let ok = self.work.digest_verify(data, sig).unwrap_or(false);
        let _ = ErrorStack::get();
        Ok(ok)
    }
}
