//! The OpenSSL bridge: public keys from token data, and (with the provider) signing
//! and X.509 with token-resident keys.

mod pubkey;

pub use pubkey::{p256_public_key, spki_sha256};

use crate::error::exit;

/// Errors from OpenSSL work; each variant names the operation.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{op}: {}", openssl_reason(source))]
    OpenSsl { op: &'static str, source: openssl::error::ErrorStack },
}

impl BridgeError {
    pub fn openssl(op: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> BridgeError {
        move |source| BridgeError::OpenSsl { op, source }
    }

    pub fn exit_code(&self) -> u8 {
        exit::OTHER
    }
}

/// The first reason in an ErrorStack, without the file:line noise.
fn openssl_reason(stack: &openssl::error::ErrorStack) -> String {
    let reasons: Vec<String> = stack
        .errors()
        .iter()
        .map(|e| e.reason().map(str::to_string).unwrap_or_else(|| format!("error 0x{:x}", e.code())))
        .collect();
    if reasons.is_empty() {
        "OpenSSL reported no reason".to_string()
    } else {
        reasons.join("; ")
    }
}

/// Drops whatever is on this thread's OpenSSL error queue.
pub fn clear_openssl_errors() {
    let _ = openssl::error::ErrorStack::get();
}
