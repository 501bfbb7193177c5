//! Exit codes: the one place that maps what went wrong to the documented code. The
//! layers below say what kind of failure they report; they never pick a code.

use crate::ca::CaError;
use crate::output::OutputError;
use crate::quorum::QuorumError;
use crate::{bridge, token};

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

/// How a child step (the ceremony's SO steps, `crate::child`) failed; its exit
/// status says which, so the parent knows what happened to the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepFailure {
    /// The PIN is definitely unchanged (nothing reached C_SetPIN, or the token refused
    /// the PINs themselves).
    Unchanged,
    /// C_SetPIN succeeded, but logging out or the proof login with the new PIN failed.
    ChangedUnproven,
    /// C_SetPIN failed in a way that does not say whether the token applied it (or the
    /// child ended in a way that says nothing).
    Unknown,
    /// A proof does not hold (the reason is on the child's stderr).
    ProofFailed,
}

/// A child step's exit status: 0 when it succeeded.
pub fn step_status(failure: Option<StepFailure>) -> u8 {
    match failure {
        None => 0,
        Some(StepFailure::Unchanged) => 10,
        Some(StepFailure::ChangedUnproven) => 11,
        Some(StepFailure::Unknown) => 12,
        Some(StepFailure::ProofFailed) => 20,
    }
}

/// The failure a child step's exit status reports (None: success); a status no step
/// uses (a crash, a usage error) says nothing, so it is Unknown.
pub fn step_failure_of(status: u8) -> Option<StepFailure> {
    match status {
        0 => None,
        10 => Some(StepFailure::Unchanged),
        11 => Some(StepFailure::ChangedUnproven),
        20 => Some(StepFailure::ProofFailed),
        _ => Some(StepFailure::Unknown),
    }
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

/// Evidence that does not hold (verify-ceremony): exit code 1, like a signature.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EvidenceInvalid(pub String);

/// A setting that cannot be resolved (exit code 3: the token store cannot be found).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

fn token_code(kind: token::ErrorKind) -> u8 {
    match kind {
        token::ErrorKind::Selection => exit::USAGE,
        token::ErrorKind::Token => exit::TOKEN,
        token::ErrorKind::Malformed => exit::OTHER,
    }
}

fn bridge_code(kind: bridge::ErrorKind) -> u8 {
    match kind {
        bridge::ErrorKind::Token => exit::TOKEN,
        bridge::ErrorKind::Internal => exit::OTHER,
        bridge::ErrorKind::Input => exit::USAGE,
    }
}

/// The exit code for an error: the first typed error found in its chain decides.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<VerificationFailed>() || cause.is::<EvidenceInvalid>() {
            return exit::VERIFY_FAILED;
        }
        if cause.is::<UsageError>() {
            return exit::USAGE;
        }
        if let Some(e) = cause.downcast_ref::<OutputError>() {
            // An output the user can name differently; a full disk is not that.
            return if e.is_input() { exit::USAGE } else { exit::OTHER };
        }
        if cause.is::<SetupError>() {
            return exit::TOKEN;
        }
        if let Some(e) = cause.downcast_ref::<token::TokenError>() {
            return token_code(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<bridge::BridgeError>() {
            return bridge_code(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<CaError>() {
            return match e {
                CaError::Refused { .. } | CaError::Input(_) => exit::USAGE,
                CaError::Records { .. } | CaError::Defect(_) => exit::OTHER,
            };
        }
        if cause.is::<bridge::SchemeError>() || cause.is::<bridge::AltNameError>() {
            return exit::USAGE;
        }
        if let Some(e) = cause.downcast_ref::<QuorumError>() {
            // Shares the user handed in that are unreadable, too few or altered are
            // their input; shares that combine to a wrong secret are not.
            return match e {
                QuorumError::WrongSecret => exit::OTHER,
                _ => exit::USAGE,
            };
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
    // One line a terminal shows as it is: a newline becomes a space, and any other
    // control character (a CR from a file name, an escape sequence) is escaped.
    crate::console::escape(&line.replace('\n', " "))
}
