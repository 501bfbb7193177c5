//! Which token a command means: by label, serial or PKCS#11 URI, never by slot index
//! (SoftHSM moves a token to a new slot id when it is initialized).

use cryptoki::slot::Slot;

use super::info::TokenFacts;

use super::{Pkcs11Uri, TokenError};

/// An initialized token, identified by what PKCS#11 URIs use.
#[derive(Debug, Clone)]
pub struct TokenRef {
    pub slot: Slot,
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
}

impl TokenRef {
    pub fn new(slot: Slot, info: &TokenFacts) -> Self {
        TokenRef {
            slot,
            label: info.label.clone(),
            serial: info.serial.clone(),
            manufacturer: info.manufacturer.clone(),
            model: info.model.clone(),
        }
    }

    /// The token's own URI (model, manufacturer, serial, token).
    pub fn uri(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.label.clone()),
            serial: Some(self.serial.clone()),
            manufacturer: Some(self.manufacturer.clone()),
            model: Some(self.model.clone()),
            ..Default::default()
        }
    }

    /// A key's URI: token label and serial (labels are not unique), object, id, type.
    pub fn key_uri(&self, label: &str, id: &[u8], object_type: &str) -> String {
        Pkcs11Uri {
            token: Some(self.label.clone()),
            serial: Some(self.serial.clone()),
            object: Some(label.to_string()),
            id: Some(id.to_vec()),
            object_type: Some(object_type.to_string()),
            ..Default::default()
        }
        .to_uri_string()
    }

    pub fn describe(&self) -> String {
        format!("'{}' (serial {})", self.label, self.serial)
    }
}

/// How the user picked a token.
#[derive(Debug, Clone, Default)]
pub struct TokenSelector {
    pub label: Option<String>,
    pub serial: Option<String>,
    pub uri: Option<Pkcs11Uri>,
}

impl TokenSelector {
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.serial.is_none() && self.uri.as_ref().is_none_or(|u| !u.names_token())
    }

    fn matches(&self, t: &TokenRef) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let uri_ok = self.uri.as_ref().is_none_or(|u| {
            eq(&u.token, &t.label)
                && eq(&u.serial, &t.serial)
                && eq(&u.model, &t.model)
                && eq(&u.manufacturer, &t.manufacturer)
        });
        eq(&self.label, &t.label) && eq(&self.serial, &t.serial) && uri_ok
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.label {
            parts.push(format!("label '{l}'"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial '{s}'"));
        }
        if let Some(u) = &self.uri {
            parts.push(format!("URI {}", u.to_uri_string()));
        }
        parts.join(", ")
    }

    /// The one token among `tokens` this selector names; with an empty selector, the
    /// only one. Never "the first". `no_token_hint` completes the message when the
    /// module has no initialized token at all.
    pub fn select(&self, tokens: Vec<TokenRef>, module: &str, no_token_hint: &str) -> Result<TokenRef, TokenError> {
        let list = |ts: &[&TokenRef]| {
            ts.iter()
                .map(|t| t.describe())
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Some modules report one serial for every token (tpm2-pkcs11: 0000000000000000):
        // then --serial cannot tell them apart, and the message must not suggest it.
        let serials_unique = |ts: &[&TokenRef]| {
            let mut s: Vec<&str> = ts.iter().map(|t| t.serial.as_str()).collect();
            s.sort_unstable();
            s.windows(2).all(|w| w[0] != w[1])
        };
        let all: Vec<&TokenRef> = tokens.iter().collect();
        if self.is_empty() {
            return match all.as_slice() {
                [] => Err(TokenError::NoToken {
                    module: module.to_string(),
                    hint: no_token_hint.to_string(),
                }),
                [one] => Ok((*one).clone()),
                many => Err(TokenError::AmbiguousToken {
                    count: many.len(),
                    list: list(many),
                    how: if serials_unique(many) {
                        "--token LABEL, --serial SERIAL or --token 'pkcs11:token=...'".into()
                    } else {
                        "--token LABEL or --token 'pkcs11:token=...;model=...;manufacturer=...' (their serials are not unique)".into()
                    },
                }),
            };
        }
        let matching: Vec<&TokenRef> = tokens.iter().filter(|t| self.matches(t)).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(TokenError::TokenNotFound {
                selector: self.describe(),
                present: if all.is_empty() {
                    "none".into()
                } else {
                    list(&all)
                },
            }),
            many => Err(TokenError::AmbiguousSelector {
                selector: self.describe(),
                count: many.len(),
                list: list(many),
                how: if serials_unique(many) {
                    "labels are not unique, select by --serial".into()
                } else if many.iter().all(|t| t.label == many[0].label) {
                    "they share label and serial (some modules report one serial for every token); give model or manufacturer in a --token URI, or relabel one of them".into()
                } else {
                    "their serials are not unique (some modules report one serial for every token): select by --token LABEL".into()
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(slot: u64, label: &str, serial: &str) -> TokenRef {
        TokenRef {
            slot: Slot::try_from(slot).unwrap(),
            label: label.into(),
            serial: serial.into(),
            manufacturer: "m".into(),
            model: "v".into(),
        }
    }

    #[test]
    fn ambiguity_messages_suggest_only_what_tells_tokens_apart() {
        let empty = TokenSelector::default();
        let unique = vec![token(1, "a", "s1"), token(2, "b", "s2")];
        let err = empty.select(unique, "mod", "").unwrap_err().to_string();
        assert!(err.contains("--serial SERIAL"), "{err}");
        let same_serial = vec![token(1, "a", "0000"), token(2, "b", "0000")];
        let err = empty.select(same_serial.clone(), "mod", "").unwrap_err().to_string();
        assert!(!err.contains("--serial") && err.contains("serials are not unique"), "{err}");
        let by_label = TokenSelector {
            label: Some("a".into()),
            ..Default::default()
        };
        let twins = vec![token(1, "a", "0000"), token(2, "a", "0000")];
        let err = by_label.select(twins, "mod", "").unwrap_err().to_string();
        assert!(err.contains("share label and serial") && !err.contains("by --serial"), "{err}");
        let dup_labels = vec![token(1, "a", "s1"), token(2, "a", "s2")];
        let err = by_label.select(dup_labels, "mod", "").unwrap_err().to_string();
        assert!(err.contains("select by --serial"), "{err}");
        assert_eq!(by_label.select(same_serial, "mod", "").unwrap().label, "a");
    }
}
