//! Backups in the PKCS#11-standard form of an HSM vendor's cloning domain (PKCS#11
//! v2.40 §4.8-4.9): a key generated `CKA_EXTRACTABLE=true` with
//! `CKA_WRAP_WITH_TRUSTED=true` can only be wrapped by a key whose `CKA_TRUSTED` is true,
//! and only the SO can set that. The SO installs an AES-256 wrap key from a secret the
//! backup quorum holds, the user wraps with `CKM_AES_KEY_WRAP_PAD` (RFC 5649), and the
//! wrap key object is destroyed again; on another token the same steps unwrap.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};

use super::object::{KeyKind, ED25519_PARAMS};
use super::session::{SecurityOfficer, Session, User};
use super::{Module, TokenError, TokenRef};

/// The wrapping mechanism hsm-demo makes backups with: RFC 5649 AES key wrap with
/// padding, under SoftHSM's name (which the wrapped-key file records).
pub const WRAP_MECHANISM_NAME: &str = "CKM_AES_KEY_WRAP_PAD";

/// CKM_AES_KEY_WRAP_KWP (PKCS#11 3.0): RFC 5649 too, the name kryoptic gives it;
/// cryptoki 0.12 has no constant for it (token/ffi.rs calls it).
const CKM_AES_KEY_WRAP_KWP: cryptoki_sys::CK_MECHANISM_TYPE = 0x210B;

/// Which name of RFC 5649 a token offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc5649 {
    /// CKM_AES_KEY_WRAP_PAD (0x210A), as SoftHSM implements it.
    WrapPad,
    /// CKM_AES_KEY_WRAP_KWP (0x210B), PKCS#11 3.0.
    Kwp,
}

impl Module {
    /// The RFC 5649 mechanism the token offers with its wrap and unwrap flags; refused
    /// (before anything is created) when it has neither, or no CKM_AES_KEY_GEN.
    pub fn require_wrapping(&self, token: &TokenRef) -> Result<Rfc5649, TokenError> {
        let missing = |what: &str| TokenError::Incapable {
            token: token.label.clone(),
            what: "keep a trusted backup",
            missing: what.to_string(),
        };
        let both = cryptoki_sys::CKF_WRAP | cryptoki_sys::CKF_UNWRAP;
        let mech = match self.ctx.get_mechanism_info(token.slot, MechanismType::AES_KEY_WRAP_PAD) {
            Ok(info) if info.wrap() && info.unwrap() => Rfc5649::WrapPad,
            _ => match self.raw.mechanism_flags(token.slot.id(), CKM_AES_KEY_WRAP_KWP) {
                Some(flags) if flags & both == both => Rfc5649::Kwp,
                _ => return Err(missing("CKM_AES_KEY_WRAP_PAD (or CKM_AES_KEY_WRAP_KWP: RFC 5649) with its wrap and unwrap flags")),
            },
        };
        self.ctx
            .get_mechanism_info(token.slot, MechanismType::AES_KEY_GEN)
            .map_err(|_| missing("CKM_AES_KEY_GEN"))?;
        Ok(mech)
    }

    /// Unwraps `blob` in `session` with the RFC 5649 mechanism `mech` (see
    /// [`Session::unwrap_private`] for the template).
    #[allow(clippy::too_many_arguments)]
    pub fn unwrap_private(
        &self,
        session: &Session<User>,
        mech: Rfc5649,
        wrapping: ObjectHandle,
        blob: &[u8],
        kind: &KeyKind,
        label: &str,
        id: &[u8],
    ) -> Result<ObjectHandle, TokenError> {
        match mech {
            Rfc5649::WrapPad => session.unwrap_private(wrapping, blob, kind, label, id),
            Rfc5649::Kwp => self
                .raw
                .unwrap_key(session.inner.handle(), CKM_AES_KEY_WRAP_KWP, wrapping, blob, &unwrap_template(kind, label, id))
                .map_err(TokenError::pkcs11("unwrap the key (C_UnwrapKey, CKM_AES_KEY_WRAP_KWP)")),
        }
    }
}

fn wrap_key_template(value: &[u8], label: &str, token_object: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(token_object),
        Attribute::Private(false),
        Attribute::Trusted(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

impl Session<SecurityOfficer> {
    /// Shows the token takes a CKA_TRUSTED key from the SO: a session object with a
    /// throwaway value, destroyed at once.
    pub fn probe_trusted_keys(&self, throwaway: &[u8]) -> Result<(), TokenError> {
        let h = self
            .inner
            .create_object(&wrap_key_template(throwaway, "hsm-demo trusted probe", false))
            .map_err(|e| TokenError::Incapable {
                token: self.token().label.clone(),
                what: "keep a trusted backup",
                missing: format!("an SO-created CKA_TRUSTED key ({})", super::error::describe(&e)),
            })?;
        let _ = self.inner.destroy_object(h);
        Ok(())
    }

    /// Installs the trusted AES-256 wrap key `value` as a public token object labelled
    /// `label` (the user's session finds it, uses it and destroys it).
    pub fn install_wrap_key(&self, value: &[u8], label: &str) -> Result<ObjectHandle, TokenError> {
        self.inner
            .create_object(&wrap_key_template(value, label, true))
            .map_err(TokenError::pkcs11("install the trusted wrap key (C_CreateObject)"))
    }
}

impl Session<User> {
    /// An unwrap-only AES-256 key with `value` as a session object of this session: what
    /// a restore needs (CKA_TRUSTED governs wrapping only, PKCS#11 v2.40 §4.9), gone
    /// with the session, no SO involved, on tokens that cannot make trusted keys too.
    pub fn session_unwrap_key(&self, value: &[u8]) -> Result<ObjectHandle, TokenError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Unwrap(true),
            Attribute::Wrap(false),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Value(value.to_vec()),
        ];
        self.inner
            .create_object(&template)
            .map_err(TokenError::pkcs11("make the session unwrap key (C_CreateObject)"))
    }

    /// The trusted wrap key labelled `label`.
    pub fn find_wrap_key(&self, label: &str) -> Result<ObjectHandle, TokenError> {
        let found = self.find(
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
            "find the wrap key",
        )?;
        match found.as_slice() {
            [one] => Ok(*one),
            _ => Err(TokenError::Malformed(format!("{} wrap keys labelled '{label}' in the token", found.len()))),
        }
    }

    /// Wraps `key` with `wrapping` (CKM_AES_KEY_WRAP_PAD).
    pub fn wrap_with(&self, wrapping: ObjectHandle, key: ObjectHandle) -> Result<Vec<u8>, TokenError> {
        self.inner
            .wrap_key(&Mechanism::AesKeyWrapPad, wrapping, key)
            .map_err(TokenError::pkcs11("wrap the key (C_WrapKey)"))
    }

    /// Unwraps `blob` with `wrapping` into a private key of `kind` with the custody
    /// template: token, private, sensitive, sign only, extractable only wrapped by a
    /// trusted key. (SoftHSM 2.6.1 refuses encrypt/verify/wrap/derive in an unwrap
    /// template: docs/platform.md.)
    pub fn unwrap_private(
        &self,
        wrapping: ObjectHandle,
        blob: &[u8],
        kind: &KeyKind,
        label: &str,
        id: &[u8],
    ) -> Result<ObjectHandle, TokenError> {
        self.inner
            .unwrap_key(&Mechanism::AesKeyWrapPad, wrapping, blob, &unwrap_template(kind, label, id))
            .map_err(TokenError::pkcs11("unwrap the key (C_UnwrapKey)"))
    }

    /// The public key object of a restored key, from its SPKI's parts.
    pub fn create_public_key(&self, public: &PublicParts, label: &str, id: &[u8]) -> Result<ObjectHandle, TokenError> {
        let mut template = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        match public {
            PublicParts::Ec { params, ec_point } => {
                template.push(Attribute::KeyType(KeyType::EC));
                template.push(Attribute::EcParams(params.clone()));
                template.push(Attribute::EcPoint(ec_point.clone()));
            }
            PublicParts::Rsa { n, e } => {
                template.push(Attribute::KeyType(KeyType::RSA));
                template.push(Attribute::Modulus(n.clone()));
                template.push(Attribute::PublicExponent(e.clone()));
            }
            PublicParts::Ed25519 { ec_point } => {
                template.push(Attribute::KeyType(KeyType::EC_EDWARDS));
                template.push(Attribute::EcParams(ED25519_PARAMS.to_vec()));
                template.push(Attribute::EcPoint(ec_point.clone()));
            }
        }
        self.inner
            .create_object(&template)
            .map_err(TokenError::pkcs11("create the public key object (C_CreateObject)"))
    }

    /// Destroys one object (a wrap key after use, an object of a restore being undone).
    pub fn destroy_object(&self, handle: ObjectHandle) -> Result<(), TokenError> {
        self.inner.destroy_object(handle).map_err(TokenError::pkcs11("destroy an object (C_DestroyObject)"))
    }
}

/// The custody template of an unwrapped private key.
fn unwrap_template(kind: &KeyKind, label: &str, id: &[u8]) -> Vec<Attribute> {
    let key_type = match kind {
        KeyKind::Ec(_) => KeyType::EC,
        KeyKind::Rsa(_) => KeyType::RSA,
        _ => KeyType::EC_EDWARDS,
    };
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(key_type),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::WrapWithTrusted(true),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

/// A public key's parts as PKCS#11 attributes take them. `ec_point` is CKA_EC_POINT's
/// value: the point in a DER OCTET STRING (PKCS#11 v2.40 §2.3.3).
pub enum PublicParts {
    /// CKA_EC_PARAMS (the named curve's DER OID) and the point.
    Ec { params: Vec<u8>, ec_point: Vec<u8> },
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ed25519 { ec_point: Vec<u8> },
}
