//! `sign`: the digest on the host, the signature in the token, via EVP and the
//! provider: ECDSA (DER by default), RSA PKCS#1 v1.5 or PSS, Ed25519.

use crate::console::outln;
use std::path::PathBuf;

use clap::ValueEnum;

use crate::bridge;
use crate::error::usage;
use crate::output;

use super::io::Input;
use super::{DataArgs, KeyArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,

    #[command(flatten)]
    data: DataArgs,

    /// ECDSA signature encoding: der (ECDSA-Sig-Value) or raw (r||s: 64, 96 or 132 bytes)
    #[arg(long, value_enum, default_value_t = SigFormat::Der)]
    format: SigFormat,

    /// Digest (default: SHA-256; SHA-384 for P-384, SHA-512 for P-521; none for Ed25519)
    #[arg(long, value_enum)]
    digest: Option<bridge::Digest>,

    /// RSA padding: pkcs1 (default) or pss
    #[arg(long, value_enum)]
    padding: Option<bridge::RsaPadding>,

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
    let scheme = key.scheme(a.digest, a.padding)?;
    let field = match (scheme, a.format) {
        (bridge::Scheme::Ecdsa { field, .. }, _) => Some(field),
        (_, SigFormat::Raw) => return Err(usage("--format raw is for ECDSA signatures only")),
        _ => None,
    };
    let signature = key.sign(scheme, |sink| input.feed(sink))?;
    let bytes = match (a.format, field) {
        (SigFormat::Raw, Some(field)) => bridge::EcdsaSignature::parse_for(&signature, field)
            .and_then(|s| s.raw())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        _ => signature,
    };
    if let Some(out) = &a.out {
        output::publish_file(out, &bytes, 0o644, "--out")?;
    }
    outln!("Signature: {}", hex::encode(&bytes))?;
    Ok(())
}
