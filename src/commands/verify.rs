//! `verify`: ECDSA P-256 / SHA-256 verification with a public key only (token public
//! object, PEM SPKI or certificate), in OpenSSL's default provider.

use std::path::{Path, PathBuf};

use openssl::pkey::{PKey, Public};
use openssl::x509::X509;

use crate::bridge::{self, EcdsaSignature};
use crate::cli::{DataArgs, GlobalArgs};
use crate::error::{usage, VerificationFailed};

use super::io::{io_reason, read_signature_file, Input};
use super::{key_selector, open_token, parse_hex};

/// Where the public key comes from.
pub struct Verifier {
    pub label: Option<String>,
    pub key: Option<String>,
    pub pubkey: Option<PathBuf>,
    pub cert: Option<PathBuf>,
}

pub fn run(
    g: &GlobalArgs,
    verifier: &Verifier,
    data: &DataArgs,
    sig: Option<&str>,
    sig_file: Option<&Path>,
) -> anyhow::Result<()> {
    // Everything the user typed is checked before any token is touched.
    let sig_bytes = match (sig, sig_file) {
        (Some(hex), None) => parse_hex("--sig", hex)?,
        (None, Some(path)) => read_signature_file(path)?,
        _ => return Err(usage("give exactly one of --sig HEX or --sig-file FILE")),
    };
    let signature = EcdsaSignature::parse(&sig_bytes).map_err(|e| usage(e.to_string()))?;
    let mut input = Input::open(data)?;
    let public = public_key(g, verifier)?;
    let ok = bridge::verify_sha256(&public, &signature, |sink| input.feed(sink))?;
    if !ok {
        return Err(VerificationFailed.into());
    }
    println!("Signature verified OK");
    Ok(())
}

fn public_key(g: &GlobalArgs, v: &Verifier) -> anyhow::Result<PKey<Public>> {
    if let Some(path) = &v.pubkey {
        let pem = read_pem("--pubkey", path)?;
        return PKey::public_key_from_pem(&pem).map_err(|_| {
            usage(format!(
                "--pubkey {} is not a PEM public key",
                path.display()
            ))
        });
    }
    if let Some(path) = &v.cert {
        let pem = read_pem("--cert", path)?;
        let cert = X509::from_pem(&pem).map_err(|_| {
            usage(format!(
                "--cert {} is not a PEM certificate",
                path.display()
            ))
        })?;
        return cert
            .public_key()
            .map_err(|_| usage(format!("--cert {}: unreadable public key", path.display())));
    }
    token_public_key(g, v.label.as_deref(), v.key.as_deref())
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
pub fn token_public_key(
    g: &GlobalArgs,
    label: Option<&str>,
    key: Option<&str>,
) -> anyhow::Result<PKey<Public>> {
    let (selector, uri) = key_selector(label, key)?;
    let (module, token) = open_token(g, uri.as_ref())?;
    let session = module.public_session(&token)?;
    let info = session.find_public_key(&selector)?;
    let point = session.ec_point(info.handle)?;
    Ok(bridge::p256_public_key(&point)?)
}
