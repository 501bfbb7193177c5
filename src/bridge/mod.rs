//! The OpenSSL bridge: every OpenSSL call lives here. Public keys from token data,
//! the pkcs11-provider and OSSL_STORE key loading, signing and verification through
//! EVP, and X.509 built from OpenSSL configs. `ffi` is the crate's only `unsafe`.

mod ffi;
mod provider;
pub mod pkix;
mod pubkey;
mod scheme;
mod signature;
mod x509;

pub use pkix::{
    build_certificate, build_crl, build_csr, crl_extensions, parse_dn, requested_alt_names,
    AltName, CertTemplate, IssueProfile, RevokedList, TbsSigner, SHIPPED_PROFILES,
};
pub use ffi::is_ca;
pub use pkix::der;
pub use provider::{Provider, PROVIDER_CONF};
pub use pubkey::{
    certificate_from_pem, curve_nid, ec_public_key, ed25519_public_key,
    public_key_from_pem, rsa_public_key, spki_sha256,
};
pub use scheme::{
    digest_of, sign_checked, sign_message, verify, Digest, FetchedScheme, PreparedSigner, PreparedVerifier, RsaPadding, Scheme,
};
pub use signature::EcdsaSignature;
pub use x509::{build_self_signed, check_self_signed, software_key, try_profile, CertSigner, KeySpec, Profile};

use std::path::PathBuf;

/// What kind of failure a [`BridgeError`] is; the command edge picks the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The provider is missing or could not reach the key: fixed at the token or setup.
    Token,
    /// OpenSSL failed an operation it should not fail.
    Internal,
}

/// Errors from OpenSSL work; each variant names the operation.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    // `err`, not `source`: the message already quotes its reasons, so it is not chained.
    #[error("{op}: {}", openssl_reason(err))]
    OpenSsl {
        op: &'static str,
        err: openssl::error::ErrorStack,
    },

    #[error("the OpenSSL pkcs11-provider is not installed at {} (Debian 12: apt-get install -t bookworm-backports pkcs11-provider; or set HSM_DEMO_PROVIDER)", path.display())]
    ProviderMissing { path: PathBuf },

    #[error("the pkcs11-provider could not load {uri}: {reason}")]
    KeyLoad { uri: String, reason: String },

    #[error("cannot load the provider configuration: {0}")]
    Config(String),
}

impl BridgeError {
    pub fn openssl(op: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> BridgeError {
        move |err| BridgeError::OpenSsl { op, err }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            BridgeError::ProviderMissing { .. } | BridgeError::KeyLoad { .. } => ErrorKind::Token,
            BridgeError::OpenSsl { .. } | BridgeError::Config(_) => ErrorKind::Internal,
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

/// Drops whatever is on this thread's OpenSSL error queue. The bridge calls it before
/// its operations: other libraries in the process leave entries behind (SoftHSM's
/// C_Initialize leaves "rdrand engine" errors: SoftHSMv2 PR #859, pkcs11-provider issue
/// #606), and an ErrorStack drained after a failure would quote them.
pub fn clear_openssl_errors() {
    let _ = openssl::error::ErrorStack::get();
}
