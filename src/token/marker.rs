//! The token's own record that its user PIN is under an activation quorum: a public
//! token data object (CKO_DATA, CKA_APPLICATION "hsm-demo", CKA_LABEL
//! "hsm-demo activation quorum", CKA_VALUE the share set id in force). The ceremony
//! writes it before the user PIN changes, each re-deal replaces it, and any process
//! reads it without a PIN: `quorum-reset-pin` never sets a human-chosen user PIN on a
//! token that carries it. It holds no secret (PKCS#11 v2.40 §4.5, data objects).

use cryptoki::object::{Attribute, ObjectClass};

use super::{Session, TokenError};

pub const LABEL: &str = "hsm-demo activation quorum";
const APPLICATION: &str = "hsm-demo";

fn template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Label(LABEL.as_bytes().to_vec()),
        Attribute::Application(APPLICATION.as_bytes().to_vec()),
    ]
}

impl<R> Session<R> {
    /// The share set id the token records for its activation quorum, if it has one.
    pub fn activation_quorum(&self) -> Result<Option<String>, TokenError> {
        let what = "look for the token's activation quorum record";
        let found = self.inner.find_objects(&template()).map_err(TokenError::pkcs11(what))?;
        let Some(&handle) = found.first() else { return Ok(None) };
        let attrs = self
            .inner
            .get_attributes(handle, &[cryptoki::object::AttributeType::Value])
            .map_err(TokenError::pkcs11(what))?;
        Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(String::from_utf8_lossy(&v).into_owned()),
            _ => None,
        }))
    }

    /// Records `set` as the activation quorum's share set: the new record is created
    /// first, then any earlier one destroyed, so the token never lacks one.
    pub fn mark_activation_quorum(&self, set: &str) -> Result<(), TokenError> {
        let what = "record the activation quorum in the token";
        let earlier = self.inner.find_objects(&template()).map_err(TokenError::pkcs11(what))?;
        let mut t = template();
        t.push(Attribute::Private(false));
        t.push(Attribute::Value(set.as_bytes().to_vec()));
        self.inner.create_object(&t).map_err(TokenError::pkcs11(what))?;
        for h in earlier {
            self.inner.destroy_object(h).map_err(TokenError::pkcs11(what))?;
        }
        Ok(())
    }

    /// Removes the record (a ceremony undone before the user PIN changed).
    pub fn unmark_activation_quorum(&self) -> Result<(), TokenError> {
        let what = "remove the activation quorum record";
        for h in self.inner.find_objects(&template()).map_err(TokenError::pkcs11(what))? {
            self.inner.destroy_object(h).map_err(TokenError::pkcs11(what))?;
        }
        Ok(())
    }
}
