//! `export-pubkey`: a token key's public half as PEM SubjectPublicKeyInfo.

use crate::console::out;
use std::path::PathBuf;

use crate::bridge::BridgeError;
use crate::output;
use crate::settings::Settings;

use super::verify::token_public_key;
use super::KeyArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,

    /// Write to FILE instead of stdout (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let public = token_public_key(settings, &a.key)?;
    let pem = public
        .public_key_to_pem()
        .map_err(BridgeError::openssl("encode the public key as PEM"))?;
    match &a.out {
        Some(path) => output::publish_file(path, &pem, 0o644, "--out")?,
        None => out!("{}", String::from_utf8_lossy(&pem))?,
    }
    Ok(())
}
