//! Key generation in the token with the custody template, read back: a token that
//! did not honour the template gets its new objects destroyed.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};

use super::object::{Algorithm, Curve, KeyClass, KeyKind, KeyObject, ED25519_PARAMS, P256_PARAMS};
use super::session::{Session, User};
use super::TokenError;

/// Whether a C_GenerateKeyPair failure says the token refused the template (rather
/// than the mechanism or the session).
fn template_refused(e: &cryptoki::error::Error) -> bool {
    use cryptoki::error::RvError::*;
    matches!(
        super::error::rv_of(e),
        Some(
            GeneralError
                | TemplateInconsistent
                | TemplateIncomplete
                | AttributeValueInvalid
                | AttributeTypeInvalid
                | AttributeReadOnly
        )
    )
}

/// A freshly generated key pair.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private: KeyObject,
    pub public: ObjectHandle,
}

impl Session<User> {
    /// Generates a key pair of `algo` that never leaves the token. Refuses, creating
    /// nothing, when any object already carries the label or the id. After generation
    /// the custody attributes are read back; a token that did not honour them gets its
    /// new objects destroyed and the call fails.
    pub fn generate(&self, algo: Algorithm, label: &str, id: Option<Vec<u8>>) -> Result<KeyPair, TokenError> {
        self.generate_with(algo, label, id, false)
    }

    /// As [`Session::generate`]; with `backup`, the private key is extractable only
    /// wrapped by a trusted key (CKA_EXTRACTABLE and CKA_WRAP_WITH_TRUSTED true, which
    /// cannot be turned off again: PKCS#11 v2.40 §4.9), for a backup under M-of-N.
    pub fn generate_with(&self, algo: Algorithm, label: &str, id: Option<Vec<u8>>, backup: bool) -> Result<KeyPair, TokenError> {
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
        let mut public_template = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            // A signing key does nothing else (SoftHSM defaults encrypt/wrap to true).
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let mut private_template = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(backup),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        if backup {
            private_template.push(Attribute::WrapWithTrusted(true));
        }
        let mechanism = match algo.kind() {
            KeyKind::Ec(curve) => {
                let params = curve.and_then(Curve::params).unwrap_or(P256_PARAMS);
                public_template.push(Attribute::EcParams(params.to_vec()));
                private_template.push(Attribute::Derive(false));
                Mechanism::EccKeyPairGen
            }
            KeyKind::Rsa(bits) => {
                public_template.push(Attribute::ModulusBits(bits.unwrap_or(2048).into()));
                public_template.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
            _ => {
                public_template.push(Attribute::EcParams(ED25519_PARAMS.to_vec()));
                private_template.push(Attribute::Derive(false));
                Mechanism::EccEdwardsKeyPairGen
            }
        };
        // Encrypt/wrap have no meaning for an EdDSA key: not asked for there.
        if algo == Algorithm::Ed25519 {
            public_template.retain(|a| !matches!(a, Attribute::Encrypt(_) | Attribute::Wrap(_)));
            private_template.retain(|a| !matches!(a, Attribute::Decrypt(_) | Attribute::Unwrap(_)));
        }
        let first = self
            .inner
            .generate_key_pair(&mechanism, &public_template, &private_template);
        let (public, private) = match first {
            Ok(pair) => pair,
            // Some tokens decide the usage attributes themselves and refuse a template
            // that sets them (tpm2-pkcs11 makes ECC keys sign+decrypt and answers
            // CKR_GENERAL_ERROR to CKA_DECRYPT false; CloudHSM wants CKA_PRIVATE true on
            // public keys): ask again with only what custody needs. The usage the token
            // chose is read back and shown.
            Err(e) if template_refused(&e) => {
                let custody_only = |t: &[Attribute]| -> Vec<Attribute> {
                    t.iter()
                        .filter(|a| {
                            !matches!(
                                a,
                                Attribute::Encrypt(_)
                                    | Attribute::Wrap(_)
                                    | Attribute::Decrypt(_)
                                    | Attribute::Unwrap(_)
                                    | Attribute::Derive(_)
                            ) && !matches!(a, Attribute::Private(false))
                        })
                        .cloned()
                        .collect()
                };
                self.inner
                    .generate_key_pair(
                        &mechanism,
                        &custody_only(&public_template),
                        &custody_only(&private_template),
                    )
                    .map_err(TokenError::pkcs11("generate the key pair"))?
            }
            Err(e) => return Err(TokenError::pkcs11("generate the key pair")(e)),
        };
        let described = self.describe_key(private, KeyClass::Private);
        let shortfalls = match &described {
            Ok(key) => match key.custody.unwrap_or_default() {
                c if backup && !c.trusted_wrap_only() => vec!["CKA_WRAP_WITH_TRUSTED is not true"],
                c => c.shortfalls(),
            },
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
}
