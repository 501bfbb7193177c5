//! The token layer's error type: each variant names what failed.

use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};

use super::role::Role;

/// What kind of failure a [`TokenError`] is; the command edge picks the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user named an object or token label that is missing, taken or ambiguous,
    /// or a key that cannot do what was asked: fixed by changing the arguments.
    Selection,
    /// The module, the token or a PIN: fixed at the token.
    Token,
    /// The token returned data hsm-demo cannot make sense of.
    Malformed,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot load PKCS#11 module {}: {reason}", path.display())]
    ModuleLoad { path: PathBuf, reason: String },

    /// hsm-demo's embedded token store could not be set up.
    #[error("{0}")]
    Store(String),

    // `err`, not `source`: the description already quotes it, so it is not chained.
    #[error("{op}: {}", describe(err))]
    Pkcs11 { op: &'static str, err: CkError },

    #[error("no initialized token in {module}{hint}")]
    NoToken { module: String, hint: String },

    #[error("{count} initialized tokens in the module ({list}); choose one with {how}")]
    AmbiguousToken {
        count: usize,
        list: String,
        how: String,
    },

    #[error("no initialized token matches {selector} (present: {present})")]
    TokenNotFound { selector: String, present: String },

    #[error("{selector} matches {count} tokens ({list}): {how}")]
    AmbiguousSelector {
        selector: String,
        count: usize,
        list: String,
        how: String,
    },

    #[error(
        "a token labelled '{0}' already exists; token labels must be unique for selection by label"
    )]
    TokenLabelExists(String),

    #[error("token '{token}' cannot {what}: it lacks {missing}; nothing was created")]
    Incapable {
        token: String,
        what: &'static str,
        missing: String,
    },

    #[error("no free (uninitialized) slot in the module to initialize a new token")]
    NoFreeSlot,

    #[error("{role} incorrect for token '{token}' (tried once, not retried: tokens lock the PIN after repeated failures)")]
    PinIncorrect { role: PinName, token: String },

    #[error("the {role} of token '{token}' is locked")]
    PinLocked { role: PinName, token: String },

    #[error("the {role} does not fit token '{token}': {detail}")]
    PinInvalid {
        role: PinName,
        token: String,
        detail: String,
    },

    #[error("the {role} for token '{token}' is {len} characters; the token takes {range}, so it was not sent to the token")]
    PinLength {
        role: PinName,
        token: String,
        len: usize,
        range: String,
    },

    #[error("token '{token}' already holds an object with {what}; nothing was created")]
    ObjectExists { token: String, what: String },

    #[error("no {kind} key matches {selector} in token '{token}'")]
    KeyNotFound {
        kind: &'static str,
        selector: String,
        token: String,
    },

    #[error("{count} {kind} keys match {selector} in token '{token}' (labels are not unique); select one with --key 'pkcs11:...;id=...'")]
    AmbiguousKey {
        kind: &'static str,
        selector: String,
        token: String,
        count: usize,
    },

    #[error("key '{label}' cannot sign: {why}")]
    KeyCannotSign { label: String, why: String },

    #[error("{what} is not a key hsm-demo reads (EC P-256, P-384, P-521, RSA, Ed25519)")]
    KeyNotRead { what: String },

    #[error("key '{label}' has no public key object with the same CKA_ID in the token")]
    NoPublicKey { label: String },

    #[error("token '{token}' did not honour key custody on '{label}': {what}")]
    CustodyViolation {
        token: String,
        label: String,
        what: String,
    },

    #[error("unexpected token data: {0}")]
    Malformed(String),
}

impl TokenError {
    /// Wraps a cryptoki error with the operation that was being attempted.
    pub fn pkcs11(op: &'static str) -> impl FnOnce(CkError) -> TokenError {
        move |err| TokenError::Pkcs11 { op, err }
    }

    /// Whether a PIN change failed on the PINs themselves (the token refused them, or
    /// hsm-demo did before sending them), so that the PIN in force is the old one. Any
    /// other failure of C_SetPIN (a device or connection error) does not say.
    pub fn pin_refused(&self) -> bool {
        matches!(
            self,
            TokenError::PinIncorrect { .. }
                | TokenError::PinInvalid { .. }
                | TokenError::PinLocked { .. }
                | TokenError::PinLength { .. }
        )
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            TokenError::ObjectExists { .. }
            | TokenError::KeyNotFound { .. }
            | TokenError::AmbiguousKey { .. }
            | TokenError::KeyCannotSign { .. }
            | TokenError::KeyNotRead { .. }
            | TokenError::TokenLabelExists(_)
            | TokenError::PinLength { .. } => ErrorKind::Selection,
            TokenError::Malformed(_) => ErrorKind::Malformed,
            _ => ErrorKind::Token,
        }
    }
}

/// A role's PIN as error messages name it ("SO PIN", "user PIN").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinName(pub Role);

impl std::fmt::Display for PinName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.pin_name())
    }
}

/// Maps login and PIN-setting failures to errors that name the token and role.
pub fn pin_error(err: CkError, role: Role, token: &str, op: &'static str) -> TokenError {
    let token = token.to_string();
    let role = PinName(role);
    match rv_of(&err) {
        Some(RvError::PinIncorrect) => TokenError::PinIncorrect { role, token },
        Some(RvError::PinLocked) => TokenError::PinLocked { role, token },
        Some(RvError::PinLenRange) => TokenError::PinInvalid {
            role,
            token,
            detail: "length out of the token's range".into(),
        },
        Some(RvError::PinInvalid) => TokenError::PinInvalid {
            role,
            token,
            detail: "contains characters the token refuses".into(),
        },
        _ => TokenError::Pkcs11 { op, err },
    }
}

/// The PKCS#11 return value when a cryptoki error carries one.
pub fn rv_of(err: &CkError) -> Option<RvError> {
    match err {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// "C_Login returned CKR_PIN_INCORRECT": the names a PKCS#11 log or spec uses,
/// rather than cryptoki's paragraph-long descriptions.
pub fn describe(err: &CkError) -> String {
    match err {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {}", rv_name(rv)),
        other => other.to_string(),
    }
}

/// The PKCS#11 name of a return value. cryptoki 0.12 names the v2.40 and 3.0 codes;
/// later ones (kryoptic returns 3.x's CKR_TOKEN_NOT_INITIALIZED, 0x208, from
/// C_GetMechanismList on an uninitialized slot) and vendor codes are named here.
fn rv_name(rv: &RvError) -> String {
    match rv {
        RvError::UnknownErrorCode(0x208) => "CKR_TOKEN_NOT_INITIALIZED (0x208, PKCS#11 3.x)".into(),
        RvError::UnknownErrorCode(code) => format!("CKR {code:#x} (not a code this build of hsm-demo knows)"),
        RvError::VendorDefined(code) => format!("CKR {code:#x} (vendor-defined)"),
        other => format!("CKR_{}", screaming_snake(&format!("{other:?}"))),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    #[test]
    fn describes_errors_with_pkcs11_names() {
        let err = CkError::Pkcs11(RvError::PinIncorrect, Function::Login);
        assert_eq!(describe(&err), "C_Login returned CKR_PIN_INCORRECT");
        let err = CkError::Pkcs11(RvError::MechanismInvalid, Function::SignInit);
        assert_eq!(describe(&err), "C_SignInit returned CKR_MECHANISM_INVALID");
        let err = CkError::Pkcs11(RvError::UnknownErrorCode(0x208), Function::GetMechanismList);
        assert_eq!(
            describe(&err),
            "C_GetMechanismList returned CKR_TOKEN_NOT_INITIALIZED (0x208, PKCS#11 3.x)"
        );
    }
}
