//! `generate-key`: an ECDSA P-256 key pair generated and kept in the token.

use crate::console::{out, outln};
use crate::bridge;
use crate::error::usage;
use crate::settings::Settings;

use super::parse_hex;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CKA_LABEL of both keys; refused if any object already has it
    #[arg(long)]
    label: String,

    /// CKA_ID in hex (default: 16 random bytes from the token's RNG)
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    if a.label.is_empty() {
        return Err(usage("--label must not be empty"));
    }
    let id = a.id.as_deref().map(|h| parse_hex("--id", h)).transpose()?;
    if id.as_ref().is_some_and(|i| i.is_empty()) {
        return Err(usage("--id must not be empty"));
    }
    let hsm = super::login(settings, None, super::Use::Change)?;
    let session = hsm.session();
    let pair = session.generate_p256(&a.label, id)?;
    let point = session.ec_point(pair.public)?;
    let pem = bridge::p256_public_key(&point)?
        .public_key_to_pem()
        .map_err(bridge::BridgeError::openssl("encode the public key as PEM"))?;
    outln!("Generated ECDSA P-256 key pair, label: {}", a.label)?;
    outln!("  id:      {}", hex::encode(&pair.private.id))?;
    outln!("  uri:     {}", pair.private.uri)?;
    outln!("  custody: sensitive, never extractable, generated in the token (read back)")?;
    out!("{}", String::from_utf8_lossy(&pem))?;
    Ok(())
}
