//! `generate-key`: a key pair generated and kept in the token (ECDSA P-256/P-384/P-521,
//! RSA 2048/3072/4096, Ed25519), after the token's mechanism list says it can.

use crate::console::{out, outln};
use crate::bridge;
use crate::error::usage;
use crate::hsm::public_key_of;
use crate::settings::Settings;
use crate::token::Algorithm;

use super::parse_hex;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CKA_LABEL of both keys; refused if any object already has it
    #[arg(long)]
    label: String,

    /// CKA_ID in hex (default: 16 random bytes from the token's RNG)
    #[arg(long, value_name = "HEX")]
    id: Option<String>,

    /// ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096 or ed25519
    #[arg(long, default_value = "ec-p256", value_name = "ALGO")]
    algo: Algorithm,
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
    hsm.require_keygen(a.algo)?;
    let session = hsm.session();
    let pair = session.generate(a.algo, &a.label, id)?;
    let pem = public_key_of(session, pair.public, &pair.private.kind)?
        .public_key_to_pem()
        .map_err(bridge::BridgeError::openssl("encode the public key as PEM"))?;
    outln!("Generated {} key pair, label: {}", a.algo.describe(), a.label)?;
    outln!("  id:      {}", hex::encode(&pair.private.id))?;
    outln!("  uri:     {}", pair.private.uri)?;
    outln!("  custody: sensitive, never extractable, generated in the token (read back)")?;
    outln!("  usage:   {} (as the token set it)", pair.private.usage.join(", "))?;
    out!("{}", String::from_utf8_lossy(&pem))?;
    Ok(())
}
