//! `sign`: SHA-256 on the host, ECDSA in the token, via EVP_DigestSign and the provider.

use crate::console::outln;
use std::path::PathBuf;

use clap::ValueEnum;

use crate::output;

use super::io::Input;
use super::{DataArgs, KeyArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,

    #[command(flatten)]
    data: DataArgs,

    /// Signature encoding: der (ECDSA-Sig-Value) or raw (r||s, 64 bytes for P-256)
    #[arg(long, value_enum, default_value_t = SigFormat::Der)]
    format: SigFormat,

    /// Also write the binary signature to FILE (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigFormat {
    /// DER ECDSA-Sig-Value (openssl dgst, X.509, CMS)
    Der,
    /// r||s, each 32 bytes (PKCS#11 CKM_ECDSA, JOSE)
    Raw,
}

pub fn run(settings: &crate::settings::Settings, a: Args) -> anyhow::Result<()> {
    if let Some(out) = &a.out {
        if out.symlink_metadata().is_ok() {
            return Err(output::OutputError::Exists {
                what: "--out".into(),
                path: out.clone(),
            }
            .into());
        }
    }
    let mut input = Input::open(&a.data)?;
    let (selector, uri) = a.key.selector()?;
    let hsm = super::login(settings, uri.as_ref(), super::Use::Login)?;
    let key = hsm.signing_key(&selector)?;
    let signature = key.sign(|sink| input.feed(sink))?;
    let bytes = match a.format {
        SigFormat::Der => signature.der().to_vec(),
        SigFormat::Raw => signature.raw()?,
    };
    if let Some(out) = &a.out {
        output::publish_file(out, &bytes, 0o644, "--out")?;
    }
    outln!("Signature: {}", hex::encode(&bytes))?;
    Ok(())
}
