//! The OpenSSL bridge: every OpenSSL call lives here. Public keys from token data,
//! the pkcs11-provider and OSSL_STORE key loading, signing and verification through
//! EVP, and X.509 built from OpenSSL configs. An adapter: no policy (that is `ca/`),
//! no command-line parsing. `ffi` holds its `unsafe` (token/ffi.rs the token layer's).

pub mod der;
mod ffi;
mod provider;
mod pem;
mod pkix;
mod prepared;
mod pubkey;
mod scheme;
mod signature;
mod verify;
mod x509;
mod crl;

pub use ffi::{is_ca, name_constraint_violation, parse_config_text, ConfExt, Constraints};
pub use crl::{build_crl, Idp, RevokedEntries};
pub use pkix::{
    build_certificate, build_csr, name_from_entries, trial_certificate, requested_alt_names, AltName, AltNameError, CertTemplate, TbsSigner,
};
pub use pem::{pem, pem_contents};
pub use provider::{Provider, PROVIDER_CONF};
pub use pubkey::{
    aes_check_value, certificate_from_pem, curve_nid, key_parts, KeyParts, ec_public_key, ed25519_public_key, public_key_from_pem, rsa_public_key, spki_sha256,
};
pub use prepared::{FetchedScheme, PreparedSigner, PreparedVerifier};
pub use scheme::{
    curve_name, digest_of, key_type_name, sign_checked, sign_message, Digest, RsaPadding, Scheme, SchemeError,
};
pub use signature::EcdsaSignature;

// The OpenSSL value types the layers above hold and pass along (a certificate, a
// request, a public key) and the hashes they take, named through the bridge so that
// no file outside it, ca/ (which reads certificate fields for its rules) and hsm/
// (which holds the provider key) names the openssl crate.
pub use openssl::pkey::{PKey, Private, Public};
pub use openssl::base64::{decode_block as base64_decode, encode_block as base64_encode};
pub use openssl::sha::{sha256, Sha256};
pub use openssl::x509::{X509NameRef, X509Req, X509};

/// Initialises OpenSSL (before anything else touches libcrypto: SoftHSM uses it too).
pub fn init() {
    openssl::init();
}
pub use verify::verify;
pub use x509::{
    build_self_signed, check_self_signed, key_usage_bits, software_key, subject_key_facts, validity, verify_chain,
    KeyFacts, KeySpec,
    SelfSignedTemplate,
};

use std::path::PathBuf;

/// What kind of failure a [`BridgeError`] is; the command edge picks the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The provider is missing or could not reach the key: fixed at the token or setup.
    Token,
    /// OpenSSL failed an operation it should not fail.
    Internal,
    /// What the user gave cannot be what OpenSSL takes (a name field it does not know).
    Input,
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

    #[error("the OpenSSL pkcs11-provider is not installed at {}", path.display())]
    ProviderMissing { path: PathBuf },

    #[error("the pkcs11-provider could not load {uri}: {reason}")]
    KeyLoad { uri: String, reason: String },

    #[error("cannot load the provider configuration: {0}")]
    Config(String),

    #[error("{}{reason}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    ConfigSyntax { line: Option<i64>, reason: String },

    #[error("name field '{field}' is not one OpenSSL knows ({reason})")]
    NameField { field: String, reason: String },
}

impl BridgeError {
    pub fn openssl(op: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> BridgeError {
        move |err| BridgeError::OpenSsl { op, err }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            BridgeError::ProviderMissing { .. } | BridgeError::KeyLoad { .. } => ErrorKind::Token,
            // An operation the token performs through the provider failed: the same loss
            // (a module or its server gone) as a failed C_Sign, and the same exit code.
            BridgeError::OpenSsl { op, .. } if op.contains("in the token") => ErrorKind::Token,
            BridgeError::OpenSsl { .. } | BridgeError::Config(_) | BridgeError::ConfigSyntax { .. } => ErrorKind::Internal,
            BridgeError::NameField { .. } => ErrorKind::Input,
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
                .or(e.data())
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
