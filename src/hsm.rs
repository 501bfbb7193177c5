//! The owned HSM context of one command: the PKCS#11 module, the chosen token, the
//! user's login, and the pkcs11-provider. Keys loaded through it borrow it, so a key
//! cannot outlive the login it depends on: the compiler enforces what used to be a
//! field-order comment.
//!
//! Why it matters: closing the application's last session or C_Logout logs the user
//! out (PKCS#11 v2.40 §5.6), and the provider's key handles die with the login
//! (CKR_OBJECT_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN); see docs/platform.md.

use std::cell::OnceCell;
use std::marker::PhantomData;
use std::path::PathBuf;

use cryptoki::types::AuthPin;
use openssl::pkey::{PKey, PKeyRef, Private, Public};

use crate::bridge::{self, Provider};
use crate::lock::StoreLock;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectHandle;

use crate::token::{
    KeyKind, KeyObject, KeySelector, Module, Session, TokenError, TokenRef, User,
};

/// An in-memory key of the same kind as `kind`, for comparisons and trials.
pub fn software_spec(kind: &KeyKind) -> bridge::KeySpec {
    match kind {
        KeyKind::Ec(curve) => bridge::KeySpec::Ec(
            curve
                .and_then(|c| c.params())
                .and_then(bridge::curve_nid)
                .unwrap_or(openssl::nid::Nid::X9_62_PRIME256V1),
        ),
        KeyKind::Rsa(bits) => bridge::KeySpec::Rsa(bits.unwrap_or(2048) as u32),
        _ => bridge::KeySpec::Ed25519,
    }
}

/// The OpenSSL public key of a token's public key object of `kind`: CKA_EC_PARAMS and
/// CKA_EC_POINT, CKA_MODULUS and CKA_PUBLIC_EXPONENT, or the Edwards point.
pub fn public_key_of<R>(
    session: &Session<R>,
    handle: ObjectHandle,
    kind: &KeyKind,
) -> anyhow::Result<PKey<Public>> {
    Ok(match kind {
        KeyKind::Ec(Some(curve)) => {
            let nid = curve
                .params()
                .and_then(bridge::curve_nid)
                .ok_or_else(|| anyhow::anyhow!("EC curve {} is not supported", curve.name()))?;
            bridge::ec_public_key(nid, &session.ec_point(handle)?)?
        }
        KeyKind::Rsa(_) => {
            let (n, e) = session.rsa_public(handle)?;
            bridge::rsa_public_key(&n, &e)?
        }
        KeyKind::EdDsa => bridge::ed25519_public_key(&session.ed25519_point(handle)?)?,
        other => anyhow::bail!("a {} key is not one hsm-demo reads", other.type_name()),
    })
}

/// A logged-in token and the provider that signs with its keys.
pub struct Hsm {
    // Field order is drop order: the session (and with it the login) goes before the
    // module, and nothing that borrows `self` can still exist by then.
    session: Session<User>,
    module: Module,
    /// The user PIN, handed to the provider, which logs in on its own where the login
    /// is not shared (a module behind p11-kit's client: docs/platform.md).
    pin: AuthPin,
    /// The pkcs11-provider's .so, loaded on the first key that needs it.
    provider_path: PathBuf,
    provider: OnceCell<Provider>,
    /// The token's mechanism list, read once (C_GetMechanismList) on first use.
    mechanisms: OnceCell<Vec<MechanismType>>,
    /// Held for as long as the context lives, after everything above is dropped.
    _lock: StoreLock,
}

/// A token-resident signing key as OpenSSL sees it: the private half through the
/// pkcs11-provider (every operation runs in the token), the public half from the
/// token's public key object in OpenSSL's default provider. Borrows its [`Hsm`].
pub struct SigningKey<'h> {
    object: KeyObject,
    /// The token's mechanism list, read when the key was loaded.
    mechanisms: Vec<MechanismType>,
    private: PKey<Private>,
    public: PKey<Public>,
    // The lifetime of the Hsm borrow, without its auto traits (the key is shared
    // across benchmark threads; the Hsm's session is not Sync).
    login: PhantomData<&'h ()>,
}

impl Hsm {
    /// Logs the user in on `token` (the PIN is tried once).
    pub fn login(
        module: Module,
        token: &TokenRef,
        pin: AuthPin,
        provider_path: PathBuf,
        lock: StoreLock,
    ) -> Result<Hsm, TokenError> {
        let session = module.login_user(token, &pin)?;
        Ok(Hsm {
            session,
            module,
            pin,
            provider_path,
            provider: OnceCell::new(),
            mechanisms: OnceCell::new(),
            _lock: lock,
        })
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    pub fn token(&self) -> &TokenRef {
        self.session.token()
    }

    /// The logged-in session, for token work that is not signing.
    pub fn session(&self) -> &Session<User> {
        &self.session
    }

    /// The user PIN this context logged in with.
    pub fn user_pin(&self) -> &AuthPin {
        &self.pin
    }

    /// Replaces the user PIN (C_SetPIN in the logged-in session). The login, and with it
    /// every provider key, stays valid; this context's copy of the PIN is not updated,
    /// so the provider must not need to log in again (it does not on a module whose
    /// login state is shared, and in the ceremony nothing after this loads a key).
    pub fn set_user_pin(&self, new: &[u8]) -> Result<(), TokenError> {
        let new = AuthPin::from(String::from_utf8_lossy(new).as_ref());
        self.session.set_user_pin(&self.pin, &new)
    }

    /// The token's mechanism list (read from the token on the first call).
    pub fn mechanisms(&self) -> Result<&[MechanismType], TokenError> {
        if let Some(m) = self.mechanisms.get() {
            return Ok(m);
        }
        let read = self.module.mechanisms(self.token())?;
        Ok(self.mechanisms.get_or_init(|| read))
    }

    /// Another session on the same login (PKCS#11 login state is per application),
    /// e.g. one per benchmark thread.
    pub fn extra_session(&self) -> Result<Session<User>, TokenError> {
        self.module.another_user_session(&self.session)
    }

    /// The one private key the selector names, loaded for signing.
    pub fn signing_key(&self, selector: &KeySelector) -> anyhow::Result<SigningKey<'_>> {
        let object = self.session.find_private_key(selector)?;
        self.load_key(object)
    }

    /// A private key the caller already found (or generated), loaded for signing:
    /// refused if it cannot sign, then its public key read from the token and the
    /// private key loaded through the provider by its URI.
    pub fn load_key(&self, object: KeyObject) -> anyhow::Result<SigningKey<'_>> {
        let public = self.public_key(&object)?;
        self.load_key_with(object, public)
    }

    /// The second half of [`Hsm::load_key`] (timed on its own by `bench`): the
    /// provider, and the private key through it, for a key whose public half the
    /// caller already read with [`Hsm::public_key`].
    pub fn load_key_with(
        &self,
        object: KeyObject,
        public: PKey<Public>,
    ) -> anyhow::Result<SigningKey<'_>> {
        let provider = match self.provider.get() {
            Some(p) => p,
            None => {
                let loaded = Provider::load(&self.provider_path)?;
                self.provider.get_or_init(|| loaded)
            }
        };
        let private = provider.private_key(&object.uri, &self.pin)?;
        // Both logins (ours and the provider's) are done: signing needs no exclusive lock.
        self._lock.logins_done()?;
        Ok(SigningKey {
            mechanisms: self.mechanisms()?.to_vec(),
            object,
            private,
            public,
            login: PhantomData,
        })
    }

    /// Refuses, creating nothing, an algorithm whose key generation mechanism the token
    /// does not list.
    pub fn require_keygen(&self, algo: crate::token::Algorithm) -> Result<(), TokenError> {
        let needed = algo.mechanisms();
        if needed.can_generate(self.mechanisms()?) {
            return Ok(());
        }
        Err(TokenError::Incapable {
            token: self.token().label.clone(),
            what: "generate this key",
            missing: needed.keygen.1.into(),
        })
    }

    /// The public key of a private key object, refusing a key hsm-demo cannot sign
    /// with, or one whose signing mechanism the token lacks.
    pub fn public_key(&self, object: &KeyObject) -> anyhow::Result<PKey<Public>> {
        let refuse = |why: String| TokenError::KeyCannotSign {
            label: object.label.clone(),
            why,
        };
        if object.can_sign != Some(true) {
            return Err(refuse("CKA_SIGN is false".into()).into());
        }
        let Some(needed) = object.kind.signing_mechanisms() else {
            let size = object.kind.size_name().unwrap_or_default();
            let what = format!("{} {size}", object.kind.type_name());
            return Err(refuse(format!(
                "it is {}; hsm-demo signs with ECDSA (P-256, P-384, P-521), RSA and Ed25519",
                what.trim_end()
            ))
            .into());
        };
        if !needed.can_sign(self.mechanisms()?) {
            return Err(TokenError::Incapable {
                token: self.token().label.clone(),
                what: "sign with this key",
                missing: needed.sign_names(),
            }
            .into());
        }
        let handle = self.session.public_key_for(object)?;
        public_key_of(&self.session, handle, &object.kind)
    }
}

impl SigningKey<'_> {
    pub fn object(&self) -> &KeyObject {
        &self.object
    }

    pub fn public(&self) -> &PKey<Public> {
        &self.public
    }

    /// The provider key, for OpenSSL operations that sign (X509_sign).
    pub fn private(&self) -> &PKeyRef<Private> {
        &self.private
    }

    /// The signature scheme of this key (see `bridge::Scheme::for_key`).
    pub fn scheme(
        &self,
        digest: Option<bridge::Digest>,
        padding: Option<bridge::RsaPadding>,
    ) -> anyhow::Result<bridge::Scheme> {
        bridge::Scheme::for_key(&self.public, digest, padding).map_err(crate::error::usage)
    }

    /// Signs the data `feed` hands over with `scheme` (the digest on the host, the
    /// signature in the token) and checks it with the token's public key before
    /// returning it.
    pub fn sign(
        &self,
        scheme: bridge::Scheme,
        feed: impl FnOnce(
            &mut dyn FnMut(&[u8]) -> Result<(), bridge::BridgeError>,
        ) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<u8>> {
        bridge::sign_checked(&self.private, &self.public, scheme, self.host_digest(scheme), feed)
    }

    /// Builds a certificate with `build`, signed by this key in the token: X509_sign
    /// through the provider, or, where `host_digest` says the provider's DigestSign
    /// cannot be trusted, the TBSCertificate signed by [`SigningKey::sign`].
    pub fn sign_certificate(
        &self,
        build: impl FnOnce(&bridge::CertSigner<'_>) -> anyhow::Result<openssl::x509::X509>,
    ) -> anyhow::Result<openssl::x509::X509> {
        let scheme = self.scheme(None, None)?;
        if self.host_digest(scheme) {
            self.with_tbs_signer(|signer| build(&bridge::CertSigner::Tbs(signer)))
        } else {
            build(&bridge::CertSigner::Evp(&self.private, scheme.x509_digest()))
        }
    }

    /// Runs `f` with a [`bridge::TbsSigner`] for this key: its default scheme, the
    /// to-be-signed bytes signed (and checked) by [`SigningKey::sign`], a throwaway key
    /// of its kind for the lint copies.
    pub fn with_tbs_signer<R>(
        &self,
        f: impl FnOnce(&bridge::TbsSigner<'_>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let scheme = self.scheme(None, None)?;
        let sign = |tbs: &[u8]| self.sign(scheme, |feed| Ok(feed(tbs)?));
        f(&bridge::TbsSigner::new(software_spec(&self.object.kind), scheme.x509_digest(), &sign))
    }

    /// Whether to hash on the host and sign the digest: for RSA on a token that lacks
    /// the hash-and-sign mechanism for the scheme's digest (opencryptoki's soft token
    /// has only CKM_RSA_PKCS and CKM_RSA_PKCS_PSS), where the provider's DigestSign
    /// path produced signatures that do not verify (docs/platform.md).
    pub fn host_digest(&self, scheme: bridge::Scheme) -> bool {
        use bridge::{Digest, Scheme};
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
