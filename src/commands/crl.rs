//! `crl`: the CA directory's next CRL (RFC 5280 §5; see `ca::crl`).

use std::path::PathBuf;

use crate::ca::{self, CaDir};
use crate::console::outln;
use crate::error::usage;
use crate::output;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA directory
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,

    /// Days until nextUpdate
    #[arg(long, value_name = "N", default_value_t = 30)]
    days: u32,

    /// Write the CRL (PEM) to FILE instead of stdout (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Write DER instead of PEM
    #[arg(long)]
    der: bool,

    /// Allow a nextUpdate after the CA certificate's notAfter (refused otherwise)
    #[arg(long)]
    allow_beyond_ca: bool,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    if a.days == 0 {
        return Err(usage("--days must be at least 1"));
    }
    if let Some(path) = &a.out {
        output::refuse_existing(path, "--out")?;
    }
    let mut ca = CaDir::open(&a.ca)?;
    let window = ca::crl_window(&ca, a.days, a.allow_beyond_ca)?;
    let (hsm, selector) = super::login_for_key(settings, &ca.key_uri)?;
    let key = hsm.signing_key(&selector)?;
    let crl = ca::make_crl(&mut ca, &key, window)?;
    let bytes = if a.der { crl.der } else { crate::bridge::pem("X509 CRL", &crl.der) };
    match &a.out {
        Some(path) => {
            output::publish_file(path, &bytes, 0o644, "--out")?;
            outln!("CRL number {}: {} revoked certificate(s), next update in {} days", crl.number, crl.entries, a.days)?;
        }
        None => crate::console::write_bytes(&bytes)?,
    }
    Ok(())
}
