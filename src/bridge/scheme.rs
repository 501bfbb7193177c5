//! Signature schemes for every key kind hsm-demo uses, chosen from the OpenSSL public
//! key itself: ECDSA with the digest that matches the curve (P-256 SHA-256, P-384
//! SHA-384, P-521 SHA-512), RSA with PKCS#1 v1.5 or PSS (MGF1 with the same digest,
//! salt length = digest length), Ed25519 pure (the whole message, no pre-hash).
//! Signing is EVP through the key's provider (the token, for a provider key);
//! verification is EVP in the default provider.

use openssl::hash::{Hasher, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};

use super::signature::EcdsaSignature;
use super::BridgeError;

/// A digest for a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    pub(super) fn md(self) -> MessageDigest {
        match self {
            Digest::Sha256 => MessageDigest::sha256(),
            Digest::Sha384 => MessageDigest::sha384(),
            Digest::Sha512 => MessageDigest::sha512(),
        }
    }

    fn md_ref(self) -> &'static openssl::md::MdRef {
        match self {
            Digest::Sha256 => openssl::md::Md::sha256(),
            Digest::Sha384 => openssl::md::Md::sha384(),
            Digest::Sha512 => openssl::md::Md::sha512(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha256 => "SHA-256",
            Digest::Sha384 => "SHA-384",
            Digest::Sha512 => "SHA-512",
        }
    }

    /// The `openssl dgst` flag.
    pub fn flag(self) -> &'static str {
        match self {
            Digest::Sha256 => "-sha256",
            Digest::Sha384 => "-sha384",
            Digest::Sha512 => "-sha512",
        }
    }

    /// The digest of `data`, in OpenSSL's default provider.
    fn of(self, data: &[u8]) -> Result<Vec<u8>, BridgeError> {
        openssl::hash::hash(self.md(), data)
            .map(|d| d.to_vec())
            .map_err(BridgeError::openssl("hash the data"))
    }
}

/// Why a key has no scheme hsm-demo signs with, or a signature cannot be one of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemeError {
    #[error("an RSA padding applies to RSA keys only")]
    PaddingNotRsa,
    #[error("Ed25519 signs the whole message (no digest is chosen for it)")]
    DigestWithEd25519,
    #[error("EC curve {0} is not one hsm-demo signs with (P-256, P-384, P-521)")]
    Curve(String),
    #[error("the EC key's parameters cannot be read")]
    UnreadableEcKey,
    #[error("a {0} key is not one hsm-demo signs with (ECDSA P-256/384/521, RSA, Ed25519)")]
    KeyType(String),
    #[error("{0}")]
    Encoding(String),
}

/// A curve's name as OpenSSL knows it (`secp256k1`), or "with explicit parameters".
pub fn curve_name(nid: Option<Nid>) -> String {
    match nid {
        Some(n) => n.short_name().map_or_else(|_| format!("NID {}", n.as_raw()), str::to_string),
        None => "with explicit parameters".into(),
    }
}

/// A key type's name (`ED448`, `RSA-PSS`), never Rust's debug text.
pub fn key_type_name(id: Id) -> String {
    Nid::from_raw(id.as_raw())
        .short_name()
        .map_or_else(|_| format!("type {}", id.as_raw()), str::to_string)
}

/// How a signature is made and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// DER ECDSA-Sig-Value; `field` bytes per r and s in the raw form.
    Ecdsa { digest: Digest, field: usize },
    RsaPkcs1 { digest: Digest, bytes: usize },
    RsaPss { digest: Digest, bytes: usize },
    Ed25519,
}

/// RSA padding as the user chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RsaPadding {
    /// PKCS#1 v1.5 (RSASSA-PKCS1-v1_5).
    #[default]
    Pkcs1,
    /// PSS, MGF1 with the same digest, salt length = digest length.
    Pss,
}

impl Scheme {
    /// The scheme for `key`: its type, curve and size decide; `digest` overrides the
    /// default digest (not for Ed25519), `padding` applies to RSA only.
    pub fn for_key<T: HasPublic>(
        key: &PKeyRef<T>,
        digest: Option<Digest>,
        padding: Option<RsaPadding>,
    ) -> Result<Scheme, SchemeError> {
        let id = key.id();
        if padding.is_some() && id != Id::RSA {
            return Err(SchemeError::PaddingNotRsa);
        }
        match id {
            Id::EC => {
                let ec = key.ec_key().map_err(|_| SchemeError::UnreadableEcKey)?;
                let (default, field) = match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => (Digest::Sha256, 32),
                    Some(Nid::SECP384R1) => (Digest::Sha384, 48),
                    Some(Nid::SECP521R1) => (Digest::Sha512, 66),
                    other => return Err(SchemeError::Curve(curve_name(other))),
                };
                Ok(Scheme::Ecdsa {
                    digest: digest.unwrap_or(default),
                    field,
                })
            }
            Id::RSA => {
                let bytes = key.size();
                let digest = digest.unwrap_or(Digest::Sha256);
                Ok(match padding.unwrap_or_default() {
                    RsaPadding::Pkcs1 => Scheme::RsaPkcs1 { digest, bytes },
                    RsaPadding::Pss => Scheme::RsaPss { digest, bytes },
                })
            }
            Id::ED25519 if digest.is_some() => Err(SchemeError::DigestWithEd25519),
            Id::ED25519 => Ok(Scheme::Ed25519),
            other => Err(SchemeError::KeyType(key_type_name(other))),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Scheme::Ecdsa { digest, .. } => format!("ECDSA with {}", digest.name()),
            Scheme::RsaPkcs1 { digest, .. } => format!("RSA PKCS#1 v1.5 with {}", digest.name()),
            Scheme::RsaPss { digest, .. } => format!(
                "RSA-PSS with {0} (MGF1 {0}, salt length = digest length)",
                digest.name()
            ),
            Scheme::Ed25519 => "Ed25519 (pure, no pre-hash)".into(),
        }
    }

    pub fn digest(&self) -> Option<Digest> {
        match self {
            Scheme::Ecdsa { digest, .. } | Scheme::RsaPkcs1 { digest, .. } | Scheme::RsaPss { digest, .. } => {
                Some(*digest)
            }
            Scheme::Ed25519 => None,
        }
    }

    /// The digest X509_sign takes: none for Ed25519.
    pub fn x509_digest(&self) -> MessageDigest {
        self.digest().map_or_else(MessageDigest::null, Digest::md)
    }

    /// Checks the encoding of a signature given by the user and returns the bytes
    /// OpenSSL verifies (ECDSA: strict DER, from DER or raw r||s).
    pub fn parse_signature(&self, bytes: &[u8]) -> Result<Vec<u8>, SchemeError> {
        match self {
            Scheme::Ecdsa { field, .. } => EcdsaSignature::parse_for(bytes, *field)
                .map(|s| s.der().to_vec())
                .map_err(|e| SchemeError::Encoding(e.to_string())),
            Scheme::RsaPkcs1 { bytes: n, .. } | Scheme::RsaPss { bytes: n, .. } if bytes.len() != *n => Err(
                SchemeError::Encoding(format!("signature is {} bytes; an RSA signature of this key is exactly {n}", bytes.len())),
            ),
            Scheme::Ed25519 if bytes.len() != 64 => Err(SchemeError::Encoding(format!(
                "signature is {} bytes; an Ed25519 signature is exactly 64",
                bytes.len()
            ))),
            _ => Ok(bytes.to_vec()),
        }
    }

    fn configure_signer(&self, s: &mut Signer) -> Result<(), BridgeError> {
        if let Scheme::RsaPss { digest, .. } = self {
            let op = BridgeError::openssl("set the PSS parameters");
            s.set_rsa_padding(Padding::PKCS1_PSS).map_err(op)?;
            s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .map_err(BridgeError::openssl("set the PSS salt length"))?;
            s.set_rsa_mgf1_md(digest.md())
                .map_err(BridgeError::openssl("set the MGF1 digest"))?;
        }
        Ok(())
    }

    pub(super) fn configure_verifier(&self, v: &mut Verifier) -> Result<(), BridgeError> {
        match self {
            Scheme::RsaPss { digest, .. } => {
                v.set_rsa_padding(Padding::PKCS1_PSS)
                    .map_err(BridgeError::openssl("set the PSS padding"))?;
                v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                    .map_err(BridgeError::openssl("set the PSS salt length"))?;
                v.set_rsa_mgf1_md(digest.md())
                    .map_err(BridgeError::openssl("set the MGF1 digest"))?;
            }
            Scheme::RsaPkcs1 { .. } => {
                v.set_rsa_padding(Padding::PKCS1)
                    .map_err(BridgeError::openssl("set the PKCS#1 padding"))?;
            }
            _ => {}
        }
        Ok(())
    }
}

pub(super) type Feed<'a> = &'a mut dyn FnMut(&[u8]) -> Result<(), BridgeError>;

/// Signs what `feed` hands over with `scheme`, and checks the signature with `public`
/// before returning it (a faulty token or path must not hand out bad signatures).
/// Digest schemes stream (constant memory); Ed25519 signs the whole message at once,
/// so its input is held in memory.
///
/// With `host_digest`, the digest is computed on the host and signed with EVP_PKEY_sign
/// (the provider then uses the raw mechanism: CKM_RSA_PKCS over a DigestInfo it
/// builds, CKM_RSA_PKCS_PSS): for a token without the hash-and-sign mechanism, where
/// pkcs11-provider 1.0's EVP_DigestSign returned RSA signatures that do not verify
/// (docs/platform.md, "hash-and-sign RSA").
pub fn sign_checked<T: HasPublic>(
    key: &PKeyRef<Private>,
    public: &PKey<T>,
    scheme: Scheme,
    host_digest: bool,
    feed: impl FnOnce(Feed) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    super::clear_openssl_errors();
    let signature = match scheme.digest() {
        None => {
            let mut message = Vec::new();
            feed(&mut |chunk| {
                message.extend_from_slice(chunk);
                Ok(())
            })?;
            let mut signer = Signer::new_without_digest(key)
                .map_err(BridgeError::openssl("start the signature (EVP_DigestSignInit)"))?;
            let sig = signer
                .sign_oneshot_to_vec(&message)
                .map_err(BridgeError::openssl("sign in the token (EVP_DigestSign)"))?;
            if !super::verify::verify_whole(public, &sig, &message)? {
                anyhow::bail!("the token produced a signature that does not verify with its own public key");
            }
            return Ok(sig);
        }
        Some(digest) => {
            let mut signer = match host_digest {
                true => None,
                false => {
                    let mut s = Signer::new(digest.md(), key)
                        .map_err(BridgeError::openssl("start the signature (EVP_DigestSignInit)"))?;
                    scheme.configure_signer(&mut s)?;
                    Some(s)
                }
            };
            let mut hasher = match host_digest {
                true => Some(Hasher::new(digest.md()).map_err(BridgeError::openssl("start the digest"))?),
                false => None,
            };
            let mut verifier = Verifier::new(digest.md(), public)
                .map_err(BridgeError::openssl("start verification"))?;
            scheme.configure_verifier(&mut verifier)?;
            let mut fed = 0usize;
            feed(&mut |chunk| {
                fed += chunk.len();
                if let Some(s) = signer.as_mut() {
                    s.update(chunk)
                        .map_err(BridgeError::openssl("hash the data (EVP_DigestSignUpdate)"))?;
                }
                if let Some(h) = hasher.as_mut() {
                    h.update(chunk).map_err(BridgeError::openssl("hash the data"))?;
                }
                verifier
                    .update(chunk)
                    .map_err(BridgeError::openssl("hash the data"))
            })?;
            let sig = match (signer, hasher) {
                (_, Some(mut h)) => {
                    let d = h.finish().map_err(BridgeError::openssl("finish the digest"))?;
                    sign_digest(key, scheme, &d)?
                }
                // pkcs11-provider 1.0 fails EVP_DigestSignFinal when no data was given
                // (so does `openssl dgst -sign` of an empty file): sign the digest of
                // nothing with EVP_PKEY_sign instead, the same mechanism in the token.
                (Some(_), None) if fed == 0 => sign_digest(key, scheme, &digest.of(&[])?)?,
                (Some(s), None) => s
                    .sign_to_vec()
                    .map_err(BridgeError::openssl("sign in the token (EVP_DigestSignFinal)"))?,
                (None, None) => unreachable!("a signer or a hasher exists"),
            };
            let ok = verifier
                .verify(&sig)
                .map_err(BridgeError::openssl("verify the signature"))?;
            super::clear_openssl_errors();
            if !ok {
                anyhow::bail!("the token produced a signature that does not verify with its own public key");
            }
            sig
        }
    };
    Ok(signature)
}

/// One EVP_DigestSign of `data` with `scheme`, not checked (the benchmark verifies a
/// sample of its signatures outside the timed loop). With `host_digest`, the digest is
/// computed on the host and signed with EVP_PKEY_sign, as in [`sign_checked`].
pub fn sign_message(
    key: &PKeyRef<Private>,
    scheme: Scheme,
    host_digest: bool,
    data: &[u8],
) -> anyhow::Result<Vec<u8>> {
    if let (true, Some(d)) = (host_digest, scheme.digest()) {
        return sign_digest(key, scheme, &d.of(data)?);
    }
    let mut signer = match scheme.digest() {
        Some(d) => Signer::new(d.md(), key),
        None => Signer::new_without_digest(key),
    }
    .map_err(BridgeError::openssl("start the signature (EVP_DigestSignInit)"))?;
    scheme.configure_signer(&mut signer)?;
    Ok(signer
        .sign_oneshot_to_vec(data)
        .map_err(BridgeError::openssl("sign (EVP_DigestSign)"))?)
}

/// The scheme's digest of `data` (for a raw PKCS#11 mechanism that signs a digest).
pub fn digest_of(scheme: Scheme, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    Ok(scheme.digest().unwrap_or(Digest::Sha256).of(data)?)
}

/// EVP_PKEY_sign over a digest computed on the host, with the scheme's padding.
fn sign_digest(key: &PKeyRef<Private>, scheme: Scheme, digest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let op = || BridgeError::openssl("sign in the token (EVP_PKEY_sign)");
    let mut ctx = PkeyCtx::new(key).map_err(op())?;
    ctx.sign_init().map_err(op())?;
    if let Some(d) = scheme.digest() {
        ctx.set_signature_md(d.md_ref()).map_err(op())?;
    }
    match scheme {
        Scheme::RsaPkcs1 { .. } => ctx.set_rsa_padding(Padding::PKCS1).map_err(op())?,
        Scheme::RsaPss { digest, .. } => {
            ctx.set_rsa_padding(Padding::PKCS1_PSS).map_err(op())?;
            ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).map_err(op())?;
            ctx.set_rsa_mgf1_md(digest.md_ref()).map_err(op())?;
        }
        _ => {}
    }
    let mut sig = Vec::new();
    ctx.sign_to_vec(digest, &mut sig).map_err(op())?;
    Ok(sig)
}
