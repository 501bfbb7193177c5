//! Key objects: P-256 generation with custody attributes, lookup, listing, read-back.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};

use super::session::{Session, User};
use super::TokenError;

/// DER of the named curve prime256v1 (1.2.840.10045.3.1.7), the CKA_EC_PARAMS value.
pub const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1 (1.3.132.0.34) and secp521r1 (1.3.132.0.35).
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

/// Which key a command means: by label, by id, or both (from --label or --key URI).
#[derive(Debug, Clone, Default)]
pub struct KeySelector {
    pub label: Option<String>,
    pub id: Option<Vec<u8>>,
}

impl KeySelector {
    fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(l) = &self.label {
            t.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }

    pub fn describe(&self) -> String {
        match (&self.label, &self.id) {
            (Some(l), Some(id)) => format!("label '{l}' and id {}", hex::encode(id)),
            (Some(l), None) => format!("label '{l}'"),
            (None, Some(id)) => format!("id {}", hex::encode(id)),
            (None, None) => "any key".to_string(),
        }
    }
}

/// The attributes that say whether a private key can ever leave the token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Custody {
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
    pub local: bool,
}

impl Custody {
    /// The ways in which this key falls short of "generated inside, never out".
    pub fn shortfalls(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.sensitive {
            out.push("CKA_SENSITIVE is false");
        }
        if self.extractable {
            out.push("CKA_EXTRACTABLE is true");
        }
        if !self.always_sensitive {
            out.push("CKA_ALWAYS_SENSITIVE is false");
        }
        if !self.never_extractable {
            out.push("CKA_NEVER_EXTRACTABLE is false");
        }
        if !self.local {
            out.push("CKA_LOCAL is false (not generated in the token)");
        }
        out
    }
}

/// CKA_CLASS of a key object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyClass {
    Private,
    Public,
}

impl KeyClass {
    /// The name RFC 7512 uses for the URI's `type` attribute.
    pub fn uri_type(self) -> &'static str {
        match self {
            KeyClass::Private => "private",
            KeyClass::Public => "public",
        }
    }

    fn object_class(self) -> ObjectClass {
        match self {
            KeyClass::Private => ObjectClass::PRIVATE_KEY,
            KeyClass::Public => ObjectClass::PUBLIC_KEY,
        }
    }
}

/// A named elliptic curve, from CKA_EC_PARAMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    /// Parameters hsm-demo does not name.
    Other,
}

impl Curve {
    fn from_params(params: &[u8]) -> Curve {
        match params {
            P256_PARAMS => Curve::P256,
            P384_PARAMS => Curve::P384,
            P521_PARAMS => Curve::P521,
            _ => Curve::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::Other => "other",
        }
    }
}

/// CKA_KEY_TYPE, with the curve for EC keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Ec(Option<Curve>),
    Rsa,
    EdDsa,
    Other(String),
}

impl KeyKind {
    fn new(key_type: Option<KeyType>, params: Option<&[u8]>) -> KeyKind {
        match key_type {
            Some(KeyType::EC) => KeyKind::Ec(params.map(Curve::from_params)),
            Some(KeyType::RSA) => KeyKind::Rsa,
            Some(KeyType::EC_EDWARDS) => KeyKind::EdDsa,
            Some(other) => KeyKind::Other(other.to_string()),
            None => KeyKind::Other("unknown".into()),
        }
    }

    /// "EC", "RSA", "EdDSA" or the PKCS#11 name.
    pub fn type_name(&self) -> &str {
        match self {
            KeyKind::Ec(_) => "EC",
            KeyKind::Rsa => "RSA",
            KeyKind::EdDsa => "EdDSA",
            KeyKind::Other(name) => name,
        }
    }

    pub fn curve(&self) -> Option<Curve> {
        match self {
            KeyKind::Ec(curve) => *curve,
            _ => None,
        }
    }
}

/// A key object as the token describes it.
#[derive(Debug, Clone)]
pub struct KeyObject {
    pub handle: ObjectHandle,
    pub class: KeyClass,
    pub label: String,
    pub id: Vec<u8>,
    pub kind: KeyKind,
    /// CKA_SIGN (private keys only).
    pub can_sign: Option<bool>,
    /// The custody attributes (private keys only).
    pub custody: Option<Custody>,
    pub uri: String,
}

/// A freshly generated key pair.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private: KeyObject,
    pub public: ObjectHandle,
}

impl<R> Session<R> {
    fn find(&self, template: &[Attribute], op: &'static str) -> Result<Vec<ObjectHandle>, TokenError> {
        self.inner
            .find_objects(template)
            .map_err(TokenError::pkcs11(op))
    }

    /// Fails with `ObjectExists` when an object this session can see carries `label`.
    pub fn ensure_label_free(&self, label: &str) -> Result<(), TokenError> {
        if self
            .find(&[Attribute::Label(label.as_bytes().to_vec())], "search objects")?
            .is_empty()
        {
            Ok(())
        } else {
            Err(TokenError::ObjectExists {
                token: self.token().label.clone(),
                what: format!("label '{label}'"),
            })
        }
    }

    /// The one public key the selector matches; needs no login (CKA_PRIVATE false).
    pub fn find_public_key(&self, selector: &KeySelector) -> Result<KeyObject, TokenError> {
        self.find_one(selector, KeyClass::Public)
    }

    fn find_one(&self, selector: &KeySelector, class: KeyClass) -> Result<KeyObject, TokenError> {
        let found = self.find(&selector.template(class.object_class()), "search keys")?;
        let kind = class.uri_type();
        match found.as_slice() {
            [one] => self.describe_key(*one, class),
            [] => Err(TokenError::KeyNotFound {
                kind,
                selector: selector.describe(),
                token: self.token().label.clone(),
            }),
            many => Err(TokenError::AmbiguousKey {
                kind,
                selector: selector.describe(),
                token: self.token().label.clone(),
                count: many.len(),
            }),
        }
    }

    /// The public key object paired with a private key (same CKA_ID, and same label
    /// when the id is empty).
    pub fn public_key_for(&self, private: &KeyObject) -> Result<ObjectHandle, TokenError> {
        let mut template = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(private.id.clone()),
        ];
        if private.id.is_empty() {
            template.push(Attribute::Label(private.label.as_bytes().to_vec()));
        }
        match self.find(&template, "search public keys")?.as_slice() {
            [one] => Ok(*one),
            _ => Err(TokenError::NoPublicKey {
                label: private.label.clone(),
            }),
        }
    }

    /// The uncompressed EC point (65 bytes for P-256) of a public key object.
    ///
    /// PKCS#11 v2.40 §2.3.3 makes CKA_EC_POINT the DER encoding of an ECPoint (an
    /// OCTET STRING), which is what SoftHSM returns (`04 41 04 ...`, 67 bytes); some
    /// tokens return the raw point, which also starts with 0x04 (AWS CloudHSM accepts
    /// both on import: opencryptoki issue #634; pkcs11-provider issue #478 reads all
    /// encodings). Both are accepted here.
    pub fn ec_point(&self, public: ObjectHandle) -> Result<Vec<u8>, TokenError> {
        let attrs = self
            .inner
            .get_attributes(public, &[AttributeType::EcPoint])
            .map_err(TokenError::pkcs11("read the public key (CKA_EC_POINT)"))?;
        let raw = attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| TokenError::Malformed("public key has no CKA_EC_POINT".into()))?;
        unwrap_ec_point(&raw).ok_or_else(|| {
            TokenError::Malformed(format!(
                "CKA_EC_POINT is neither a point nor a DER OCTET STRING: {}",
                hex::encode(&raw)
            ))
        })
    }

    fn describe_key(&self, handle: ObjectHandle, class: KeyClass) -> Result<KeyObject, TokenError> {
        let attrs = self
            .inner
            .get_attributes(
                handle,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::Sign,
                ],
            )
            .map_err(TokenError::pkcs11("read key attributes"))?;
        let (mut label, mut id, mut key_type, mut params, mut sign) =
            (String::new(), Vec::new(), None, None, None);
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => id = i,
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::Sign(s) => sign = Some(s),
                _ => {}
            }
        }
        let private = class == KeyClass::Private;
        Ok(KeyObject {
            handle,
            class,
            uri: self.token().key_uri(&label, &id, class.uri_type()),
            label,
            id,
            kind: KeyKind::new(key_type, params.as_deref()),
            can_sign: if private { sign } else { None },
            custody: if private {
                Some(self.custody(handle)?)
            } else {
                None
            },
        })
    }

    /// Reads the custody attributes of a private key.
    pub fn custody(&self, key: ObjectHandle) -> Result<Custody, TokenError> {
        let attrs = self
            .inner
            .get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Local,
                ],
            )
            .map_err(TokenError::pkcs11("read the key's custody attributes"))?;
        let mut c = Custody::default();
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => c.sensitive = v,
                Attribute::Extractable(v) => c.extractable = v,
                Attribute::AlwaysSensitive(v) => c.always_sensitive = v,
                Attribute::NeverExtractable(v) => c.never_extractable = v,
                Attribute::Local(v) => c.local = v,
                _ => {}
            }
        }
        Ok(c)
    }
}

impl Session<User> {
    /// Generates an ECDSA P-256 key pair that never leaves the token. Refuses, creating
    /// nothing, when any object already carries the label or the id. After generation
    /// the custody attributes are read back; a token that did not honour them gets its
    /// new objects destroyed and the call fails.
    pub fn generate_p256(&self, label: &str, id: Option<Vec<u8>>) -> Result<KeyPair, TokenError> {
        let token = self.token().label.clone();
        self.ensure_label_free(label)?;
        let id = match id {
            Some(id) => id,
            None => self.random(16)?,
        };
        if !self.find(&[Attribute::Id(id.clone())], "search objects")?.is_empty() {
            return Err(TokenError::ObjectExists {
                token,
                what: format!("id {}", hex::encode(&id)),
            });
        }
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            // A signing key does nothing else (SoftHSM defaults encrypt/wrap to true).
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let (public, private) = self
            .inner
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(TokenError::pkcs11("generate an EC P-256 key pair"))?;
        let described = self.describe_key(private, KeyClass::Private);
        let shortfalls = match &described {
            Ok(key) => key.custody.unwrap_or_default().shortfalls(),
            Err(_) => vec!["its attributes cannot be read back"],
        };
        if !shortfalls.is_empty() {
            // Leave no half-trusted key behind.
            let _ = self.inner.destroy_object(private);
            let _ = self.inner.destroy_object(public);
            return Err(TokenError::CustodyViolation {
                token,
                label: label.to_string(),
                what: format!("{}; the new key pair was destroyed", shortfalls.join(", ")),
            });
        }
        Ok(KeyPair {
            private: described?,
            public,
        })
    }

    /// Destroys both halves of a key pair this run created (undo after a failed ceremony).
    pub fn destroy_key_pair(&self, pair: &KeyPair) -> Result<(), TokenError> {
        self.inner
            .destroy_object(pair.private.handle)
            .map_err(TokenError::pkcs11("destroy the private key"))?;
        self.inner
            .destroy_object(pair.public)
            .map_err(TokenError::pkcs11("destroy the public key"))
    }

    /// C_Sign with CKM_ECDSA over a digest computed by the caller: the raw PKCS#11
    /// path (r||s), used by `bench` to compare with OpenSSL's provider path.
    pub fn sign_digest(&self, key: ObjectHandle, digest: &[u8]) -> Result<Vec<u8>, TokenError> {
        self.inner
            .sign(&Mechanism::Ecdsa, key, digest)
            .map_err(TokenError::pkcs11("sign a digest (C_Sign, CKM_ECDSA)"))
    }

    /// The one private key the selector matches (refusing none or several).
    pub fn find_private_key(&self, selector: &KeySelector) -> Result<KeyObject, TokenError> {
        self.find_one(selector, KeyClass::Private)
    }

    /// Every public and private key on the token that this session can see, sorted by
    /// label, id and class.
    pub fn list_keys(&self) -> Result<Vec<KeyObject>, TokenError> {
        let mut out = Vec::new();
        for class in [KeyClass::Private, KeyClass::Public] {
            for h in self.find(&[Attribute::Class(class.object_class())], "search keys")? {
                out.push(self.describe_key(h, class)?);
            }
        }
        out.sort_by(|a, b| (&a.label, &a.id, a.class).cmp(&(&b.label, &b.id, b.class)));
        Ok(out)
    }
}

/// Accepts a raw uncompressed/compressed point or one wrapped in a DER OCTET STRING.
pub fn unwrap_ec_point(bytes: &[u8]) -> Option<Vec<u8>> {
    let is_point = |p: &[u8]| {
        matches!(
            (p.first(), p.len()),
            (Some(4), 65) | (Some(2 | 3), 33) | (Some(4), 97) | (Some(4), 133)
        )
    };
    // DER: 0x04 tag, short-form length equal to the rest, content a valid point.
    if bytes.len() >= 2
        && bytes[0] == 0x04
        && usize::from(bytes[1]) == bytes.len() - 2
        && bytes[1] < 0x80
    {
        let inner = &bytes[2..];
        if is_point(inner) {
            return Some(inner.to_vec());
        }
    }
    if bytes.len() >= 3
        && bytes[0] == 0x04
        && bytes[1] == 0x81
        && usize::from(bytes[2]) == bytes.len() - 3
    {
        let inner = &bytes[3..];
        if is_point(inner) {
            return Some(inner.to_vec());
        }
    }
    if is_point(bytes) {
        return Some(bytes.to_vec());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_der_and_raw_points() {
        let mut point = vec![0x04];
        point.extend([0x11; 64]);
        let mut der = vec![0x04, 0x41];
        der.extend(&point);
        assert_eq!(unwrap_ec_point(&der).unwrap(), point);
        assert_eq!(unwrap_ec_point(&point).unwrap(), point);
        // A raw point whose X happens to start with 0x3f must not be read as DER.
        let mut tricky = vec![0x04, 0x3f];
        tricky.extend([0x22; 63]);
        assert_eq!(unwrap_ec_point(&tricky).unwrap(), tricky);
        assert!(unwrap_ec_point(&[0x04, 0x02, 0x01]).is_none());
    }

    #[test]
    fn custody_shortfalls_name_each_attribute() {
        let good = Custody {
            sensitive: true,
            extractable: false,
            always_sensitive: true,
            never_extractable: true,
            local: true,
        };
        assert!(good.shortfalls().is_empty());
        let bad = Custody {
            extractable: true,
            ..good
        };
        assert_eq!(bad.shortfalls(), vec!["CKA_EXTRACTABLE is true"]);
    }
}
