//! The OpenSSL bridge: public keys from token data, and (with the provider) signing
//! and X.509 with token-resident keys.

mod ffi;
mod provider;
mod pubkey;
mod signature;
mod x509;

pub use ffi::rename_no_replace;
pub use provider::{Provider, PROVIDER_CONF};
pub use pubkey::{p256_public_key, spki_sha256};
pub use signature::{sign_sha256, verify_sha256, EcdsaSignature};
pub use x509::{build_self_signed, check_self_signed, Profile};

use std::path::PathBuf;

use crate::error::exit;

/// Errors from OpenSSL work; each variant names the operation.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{op}: {}", openssl_reason(source))]
    OpenSsl {
        op: &'static str,
        source: openssl::error::ErrorStack,
    },

    #[error("the OpenSSL pkcs11-provider is not installed at {} (Debian 12: apt-get install -t bookworm-backports pkcs11-provider; or set HSM_DEMO_PROVIDER)", path.display())]
    ProviderMissing { path: PathBuf },

    #[error("the pkcs11-provider could not load {uri}: {reason}")]
    KeyLoad { uri: String, reason: String },

    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
}

impl BridgeError {
    pub fn openssl(op: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> BridgeError {
        move |source| BridgeError::OpenSsl { op, source }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            BridgeError::ProviderMissing { .. } | BridgeError::KeyLoad { .. } => exit::TOKEN,
            BridgeError::OpenSsl { .. } | BridgeError::Io { .. } => exit::OTHER,
        }
    }
}

/// The first reason in an ErrorStack, without the file:line noise.
fn openssl_reason(stack: &openssl::error::ErrorStack) -> String {
    let reasons: Vec<String> = stack
        .errors()
        .iter()
        .map(|e| {
            e.reason()
                .map(str::to_string)
                .unwrap_or_else(|| format!("error 0x{:x}", e.code()))
        })
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
