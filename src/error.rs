//! Exit codes, and the small error types the command edge uses to pick one.

use crate::bridge::BridgeError;
use crate::token::TokenError;

/// The documented exit codes (README "Exit codes").
pub mod exit {
    /// `verify`: the signature does not match the data and key.
    pub const VERIFY_FAILED: u8 = 1;
    /// Bad arguments or input: malformed signature, unknown label, missing file.
    pub const USAGE: u8 = 2;
    /// The PKCS#11 module, the token or the PIN.
    pub const TOKEN: u8 = 3;
    /// Anything else.
    pub const OTHER: u8 = 4;
}

/// An input or usage problem the user can fix by changing the command line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Wraps a message as a [`UsageError`] for `anyhow` call sites.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// The signature did not verify (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("signature verification failed")]
pub struct VerificationFailed;

/// The exit code for an error: the first typed error found in its chain decides.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<VerificationFailed>() {
            return exit::VERIFY_FAILED;
        }
        if cause.is::<UsageError>() {
            return exit::USAGE;
        }
        if let Some(e) = cause.downcast_ref::<TokenError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<BridgeError>() {
            return e.exit_code();
        }
    }
    exit::OTHER
}

/// The error and its causes on one line, without repeating a cause that the
/// message above it already quotes.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
