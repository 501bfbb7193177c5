//! `sign`: SHA-256 on the host, ECDSA in the token, via EVP_DigestSign and the provider.

use std::path::Path;

use crate::bridge::{self, EcdsaSignature};
use crate::cli::{DataArgs, GlobalArgs, KeyArgs, SigFormat};
use crate::error::usage;

use super::io::{write_new_file, Input};
use super::{load_signing_key, KeyHandle};

pub fn run(
    g: &GlobalArgs,
    key: &KeyArgs,
    data: &DataArgs,
    format: SigFormat,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(out) = out {
        if out.exists() {
            return Err(usage(format!(
                "--out {} already exists; refusing to overwrite",
                out.display()
            )));
        }
    }
    let mut input = Input::open(data)?;
    let handle = load_signing_key(g, key)?;
    let signature = sign_checked(&handle, &mut input)?;
    let bytes = match format {
        SigFormat::Der => signature.der().to_vec(),
        SigFormat::Raw => signature.raw()?,
    };
    if let Some(out) = out {
        write_new_file(out, &bytes, "--out")?;
    }
    println!("Signature: {}", hex::encode(&bytes));
    Ok(())
}

/// Signs through the provider, then checks the signature with the token's public key
/// before anyone sees it (a faulty token or path must not hand out bad signatures).
pub fn sign_checked(handle: &KeyHandle, input: &mut Input) -> anyhow::Result<EcdsaSignature> {
    let mut data = Vec::new();
    let signature = bridge::sign_sha256(&handle.private, |sink| {
        input.feed(&mut |chunk| {
            data.extend_from_slice(chunk);
            sink(chunk)
        })
    })?;
    let ok = bridge::verify_sha256(&handle.public, &signature, |sink| Ok(sink(&data)?))?;
    if !ok {
        anyhow::bail!(
            "the token produced a signature that does not verify with its own public key"
        );
    }
    Ok(signature)
}
