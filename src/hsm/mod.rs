//! The owned HSM context of one command: the PKCS#11 module, the chosen token, the
//! user's login, and the pkcs11-provider. Keys loaded through it borrow it, so a key
//! cannot outlive the login it depends on: the compiler enforces what used to be a
//! field-order comment.
//!
//! Why it matters: closing the application's last session or C_Logout logs the user
//! out (PKCS#11 v2.40 §5.6), and the provider's key handles die with the login
//! (CKR_OBJECT_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN); see docs/platform.md.

mod signing;

use std::cell::OnceCell;
use std::path::PathBuf;

use cryptoki::types::AuthPin;
use openssl::pkey::{PKey, Public};

use crate::bridge::{self, Provider};
use crate::lock::StoreLock;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectHandle;

use crate::token::{
    KeyKind, KeyObject, KeySelector, Module, Session, TokenError, TokenRef, User,
};

pub use signing::{SigningKey, ThreadSigner};

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
                .ok_or_else(|| TokenError::KeyNotRead { what: format!("an EC key on curve {}", if curve.name() == "other" { "other than P-256, P-384, P-521" } else { curve.name() }) })?;
            bridge::ec_public_key(nid, &session.ec_point(handle)?)?
        }
        KeyKind::Rsa(_) => {
            let (n, e) = session.rsa_public(handle)?;
            bridge::rsa_public_key(&n, &e)?
        }
        KeyKind::EdDsa => bridge::ed25519_public_key(&session.ed25519_point(handle)?)?,
        other => return Err(TokenError::KeyNotRead { what: format!("a {} key", other.type_name()) }.into()),
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
        let new = std::str::from_utf8(new).map(AuthPin::from).map_err(|_| TokenError::PinInvalid {
            role: crate::token::PinName(crate::token::Role::User),
            token: self.token().label.clone(),
            detail: "the new PIN is not UTF-8".into(),
        })?;
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
                let loaded = Provider::load(&self.provider_path).map_err(|e| match e {
                    bridge::BridgeError::ProviderMissing { .. } => anyhow::Error::from(e).context(
                        "hsm-demo signs through the OpenSSL pkcs11-provider (Debian 12: apt-get install -t bookworm-backports pkcs11-provider; or set HSM_DEMO_PROVIDER)",
                    ),
                    other => other.into(),
                })?;
                self.provider.get_or_init(|| loaded)
            }
        };
        let private = provider.private_key(&object.uri, &self.pin)?;
        // Both logins (ours and the provider's) are done: signing needs no exclusive lock.
        self._lock.logins_done()?;
        Ok(SigningKey::new(object, self.mechanisms()?.to_vec(), private, public))
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

    /// Stores `cert` in the token as a public certificate object beside `key` (whose
    /// certificate it must be), unless it is there already. A module that refuses
    /// certificate objects: its error, for one line of the caller's.
    pub fn store_certificate(&self, key: &KeyObject, cert: &openssl::x509::X509) -> anyhow::Result<crate::token::cert::Stored> {
        Ok(self.session.store_certificate(key, &certificate_parts(cert)?)?)
    }

    /// The private key of this token whose public key is `public`, if any.
    pub fn key_of(&self, public: &PKey<Public>) -> anyhow::Result<Option<KeyObject>> {
        for k in self.session.list_keys()? {
            if k.class != crate::token::KeyClass::Private {
                continue;
            }
            let Ok(handle) = self.session.public_key_for(&k) else { continue };
            if public_key_of(&self.session, handle, &k.kind).is_ok_and(|p| p.public_eq(public)) {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }
}

/// What a certificate object holds, from the certificate.
pub fn certificate_parts(cert: &openssl::x509::X509) -> anyhow::Result<crate::token::cert::CertParts> {
    Ok(crate::token::cert::CertParts {
        der: cert.to_der()?,
        subject: cert.subject_name().to_der()?,
        issuer: cert.issuer_name().to_der()?,
        serial: bridge::der::integer(&cert.serial_number().to_bn()?.to_vec()),
    })
}
