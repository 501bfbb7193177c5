//! Key operations on a session: lookup that refuses ambiguity, listing, public key
//! and custody reads, destruction (generation is in generate.rs).

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};

use super::generate::KeyPair;
use super::object::{unwrap_ec_point, Custody, KeyClass, KeyKind, KeyObject, KeySelector};
use super::session::{Session, User};
use super::TokenError;

impl<R> Session<R> {
    pub(super) fn find(&self, template: &[Attribute], op: &'static str) -> Result<Vec<ObjectHandle>, TokenError> {
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
        let raw = self.raw_ec_point(public)?;
        unwrap_ec_point(&raw).ok_or_else(|| {
            TokenError::Malformed(format!(
                "CKA_EC_POINT is neither a point nor a DER OCTET STRING: {}",
                hex::encode(&raw)
            ))
        })
    }

    /// CKA_EC_POINT as the token returns it.
    fn raw_ec_point(&self, public: ObjectHandle) -> Result<Vec<u8>, TokenError> {
        self.inner
            .get_attributes(public, &[AttributeType::EcPoint])
            .map_err(TokenError::pkcs11("read the public key (CKA_EC_POINT)"))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| TokenError::Malformed("public key has no CKA_EC_POINT".into()))
    }

    /// CKA_MODULUS and CKA_PUBLIC_EXPONENT of an RSA public key object.
    pub fn rsa_public(&self, public: ObjectHandle) -> Result<(Vec<u8>, Vec<u8>), TokenError> {
        let attrs = self
            .inner
            .get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])
            .map_err(TokenError::pkcs11("read the public key (CKA_MODULUS)"))?;
        let (mut n, mut e) = (None, None);
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        n.zip(e)
            .ok_or_else(|| TokenError::Malformed("RSA public key without modulus or exponent".into()))
    }

    /// The 32-byte Ed25519 public key of a CKA_EC_POINT: a DER OCTET STRING (what
    /// SoftHSM returns, PKCS#11 3.0's text) or the raw bytes (PKCS#11 3.1;
    /// pkcs11-provider issue #478 reads both).
    pub fn ed25519_point(&self, public: ObjectHandle) -> Result<Vec<u8>, TokenError> {
        match self.raw_ec_point(public)?.as_slice() {
            [0x04, 0x20, rest @ ..] if rest.len() == 32 => Ok(rest.to_vec()),
            raw if raw.len() == 32 => Ok(raw.to_vec()),
            other => Err(TokenError::Malformed(format!(
                "Ed25519 CKA_EC_POINT is neither 32 bytes nor a DER OCTET STRING of 32: {}",
                hex::encode(other)
            ))),
        }
    }

    pub(super) fn describe_key(&self, handle: ObjectHandle, class: KeyClass) -> Result<KeyObject, TokenError> {
        let attrs = self
            .inner
            .get_attributes(
                handle,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::ModulusBits,
                    AttributeType::Modulus,
                    AttributeType::Sign,
                    AttributeType::Verify,
                    AttributeType::Decrypt,
                    AttributeType::Encrypt,
                    AttributeType::Unwrap,
                    AttributeType::Wrap,
                    AttributeType::Derive,
                ],
            )
            .map_err(TokenError::pkcs11("read key attributes"))?;
        let (mut label, mut id, mut key_type, mut params, mut sign, mut bits) =
            (String::new(), Vec::new(), None, None, None, None);
        let mut usage = Vec::new();
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => id = i,
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::Sign(s) => {
                    sign = Some(s);
                    if s {
                        usage.push("sign");
                    }
                }
                Attribute::Verify(true) => usage.push("verify"),
                Attribute::Decrypt(true) => usage.push("decrypt"),
                Attribute::Encrypt(true) => usage.push("encrypt"),
                Attribute::Unwrap(true) => usage.push("unwrap"),
                Attribute::Wrap(true) => usage.push("wrap"),
                Attribute::Derive(true) => usage.push("derive"),
                Attribute::ModulusBits(b) => bits = Some(u64::from(b)),
                // A private key carries CKA_MODULUS but often not CKA_MODULUS_BITS
                // (PKCS#11 v2.40 §2.1.2 gives that one to public keys).
                Attribute::Modulus(m) if bits.is_none() => bits = Some(m.len() as u64 * 8),
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
            kind: KeyKind::new(key_type, params.as_deref(), bits),
            usage,
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
                    AttributeType::WrapWithTrusted,
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
                Attribute::WrapWithTrusted(v) => c.wrap_with_trusted = v,
                _ => {}
            }
        }
        Ok(c)
    }
}

impl Session<User> {
    /// Destroys both halves of a key pair this run created (undo after a failed ceremony).
    pub fn destroy_key_pair(&self, pair: &KeyPair) -> Result<(), TokenError> {
        self.destroy_key(&pair.private, Some(pair.public))
    }

    /// Destroys a private key and, when it has one, its public key.
    pub fn destroy_key(
        &self,
        private: &KeyObject,
        public: Option<ObjectHandle>,
    ) -> Result<(), TokenError> {
        self.inner
            .destroy_object(private.handle)
            .map_err(TokenError::pkcs11("destroy the private key"))?;
        if let Some(public) = public {
            self.inner
                .destroy_object(public)
                .map_err(TokenError::pkcs11("destroy the public key"))?;
        }
        Ok(())
    }

    /// C_Sign straight through cryptoki: a measurement only, the raw PKCS#11 path
    /// `bench` compares with OpenSSL's provider path (never a signature hsm-demo hands
    /// out; those come from `hsm::SigningKey`, checked): `data` is a digest for CKM_ECDSA (r||s comes back), a
    /// DER DigestInfo for CKM_RSA_PKCS, the message for CKM_EDDSA.
    pub fn sign_raw_for_measurement(&self, key: ObjectHandle, kind: &KeyKind, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let mechanism = match kind {
            KeyKind::Ec(_) => Mechanism::Ecdsa,
            KeyKind::Rsa(_) => Mechanism::RsaPkcs,
            _ => Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
        };
        self.inner
            .sign(&mechanism, key, data)
            .map_err(TokenError::pkcs11("sign (C_Sign)"))
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

