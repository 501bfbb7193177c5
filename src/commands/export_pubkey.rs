//! `export-pubkey`: a token key's public half as PEM SubjectPublicKeyInfo.

use std::path::Path;

use crate::bridge::BridgeError;
use crate::cli::{GlobalArgs, KeyArgs};

use super::io::write_new_file;
use super::verify::token_public_key;

pub fn run(g: &GlobalArgs, key: &KeyArgs, out: Option<&Path>) -> anyhow::Result<()> {
    let public = token_public_key(g, key.label.as_deref(), key.key.as_deref())?;
    let pem = public
        .public_key_to_pem()
        .map_err(BridgeError::openssl("encode the public key as PEM"))?;
    match out {
        Some(path) => write_new_file(path, &pem, "--out")?,
        None => print!("{}", String::from_utf8_lossy(&pem)),
    }
    Ok(())
}
