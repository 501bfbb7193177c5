//! `generate-key`: an ECDSA P-256 key pair generated and kept in the token.

use crate::bridge;
use crate::cli::GlobalArgs;
use crate::error::usage;

use super::{login_user, parse_hex};

pub fn run(g: &GlobalArgs, label: &str, id: Option<&str>) -> anyhow::Result<()> {
    if label.is_empty() {
        return Err(usage("--label must not be empty"));
    }
    let id = id.map(|h| parse_hex("--id", h)).transpose()?;
    if id.as_ref().is_some_and(|i| i.is_empty()) {
        return Err(usage("--id must not be empty"));
    }
    let (_module, session) = login_user(g, None)?;
    let pair = session.generate_p256(label, id)?;
    let point = session.ec_point(pair.public)?;
    let public = bridge::p256_public_key(&point)?;
    let pem = public
        .public_key_to_pem()
        .map_err(bridge::BridgeError::openssl("encode the public key as PEM"))?;
    println!("Generated ECDSA P-256 key pair, label: {label}");
    println!("  id:      {}", hex::encode(&pair.id));
    println!(
        "  uri:     {}",
        session.token().key_uri(&pair.label, &pair.id, "private")
    );
    println!("  custody: sensitive, never extractable, generated in the token (read back)");
    print!("{}", String::from_utf8_lossy(&pem));
    Ok(())
}
