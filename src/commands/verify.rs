//! `verify`: verification with a public key only (token public object, PEM SPKI or
//! certificate), in OpenSSL's default provider; the scheme follows from the key
//! (ECDSA with the curve's digest, RSA PKCS#1 v1.5 or PSS, Ed25519).

use crate::console::outln;
use std::path::{Path, PathBuf};

use clap::ArgGroup;
use crate::bridge::{PKey, Public, X509};

use crate::bridge;
use crate::error::{usage, VerificationFailed};
use crate::output::reason as io_reason;
use crate::settings::Settings;

use super::io::{read_signature_file, Input};
use super::{open_token, parse_hex, DataArgs, KeyArgs};

#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("signature").required(true).args(["sig", "sig_file"])))]
#[command(group(ArgGroup::new("verifier").required(true).args(["label", "key", "pubkey", "cert"])))]
pub struct Args {
    /// CKA_LABEL of the key pair in the token
    #[arg(long)]
    label: Option<String>,

    /// PKCS#11 URI of the key ('pkcs11:object=...;id=...')
    #[arg(long, value_name = "URI")]
    key: Option<String>,

    /// PEM public key (SubjectPublicKeyInfo) instead of the token
    #[arg(long, value_name = "PEM")]
    pubkey: Option<PathBuf>,

    /// PEM certificate whose public key verifies, instead of the token
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,

    #[command(flatten)]
    data: DataArgs,

    /// Signature in hex, DER or raw r||s
    #[arg(long, value_name = "HEX")]
    sig: Option<String>,

    /// File with the signature: binary DER, binary r||s, or hex text
    #[arg(long, value_name = "FILE")]
    sig_file: Option<PathBuf>,

    /// Digest (default: the key's: SHA-256; SHA-384 for P-384, SHA-512 for P-521)
    #[arg(long, value_enum)]
    digest: Option<super::args::DigestArg>,

    /// RSA padding: pkcs1 (default) or pss
    #[arg(long, value_enum)]
    padding: Option<super::args::PaddingArg>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    // Everything the user typed is checked before any token is touched.
    let sig_bytes = match (&a.sig, &a.sig_file) {
        (Some(hex), None) => parse_hex("--sig", hex)?,
        (None, Some(path)) => read_signature_file(path)?,
        _ => return Err(usage("give exactly one of --sig HEX or --sig-file FILE")),
    };
    if sig_bytes.is_empty() {
        return Err(usage("signature is empty"));
    }
    let mut input = Input::open(&a.data)?;
    let public = public_key(settings, &a)?;
    let scheme = bridge::Scheme::for_key(&public, a.digest.map(Into::into), a.padding.map(Into::into))
        .map_err(super::args::scheme_error)?;
    let signature = scheme.parse_signature(&sig_bytes).map_err(super::args::scheme_error)?;
    let ok = bridge::verify(&public, scheme, &signature, |sink| input.feed(sink))?;
    if !ok {
        return Err(VerificationFailed.into());
    }
    outln!("Signature verified OK")?;
    Ok(())
}

fn public_key(settings: &Settings, a: &Args) -> anyhow::Result<PKey<Public>> {
    if let Some(path) = &a.pubkey {
        return PKey::public_key_from_pem(&read_pem("--pubkey", path)?).map_err(|_| {
            usage(format!(
                "--pubkey {} is not a PEM public key",
                path.display()
            ))
        });
    }
    if let Some(path) = &a.cert {
        let cert = X509::from_pem(&read_pem("--cert", path)?).map_err(|_| {
            usage(format!(
                "--cert {} is not a PEM certificate",
                path.display()
            ))
        })?;
        return cert
            .public_key()
            .map_err(|_| usage(format!("--cert {}: unreadable public key", path.display())));
    }
    let key = KeyArgs {
        label: a.label.clone(),
        key: a.key.clone(),
    };
    token_public_key(settings, &key)
}

fn read_pem(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        usage(format!(
            "cannot read {flag} {}: {}",
            path.display(),
            io_reason(&e)
        ))
    })
}

/// The public key of a token key pair, read without logging in.
pub fn token_public_key(settings: &Settings, key: &KeyArgs) -> anyhow::Result<PKey<Public>> {
    let (selector, uri) = key.selector()?;
    let (module, token, _lock) = open_token(settings, uri.as_ref(), super::Use::Read)?;
    let session = module.public_session(&token)?;
    let object = session.find_public_key(&selector)?;
    crate::hsm::public_key_of(&session, object.handle, &object.kind)
}
