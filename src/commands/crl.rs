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

    #[command(flatten)]
    note: super::args::NoteArg,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let note = a.note.checked()?;
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
    let output = ca::CrlOutput { out: a.out.as_deref(), pem: !a.der, who: ca::audit::Who::of(&hsm, &ca.key_uri, note) };
    let crl = ca::make_crl(&mut ca, &key, window, &output)?;
    ca.log.checkpoint(&key)?;
    let bytes = crl.bytes;
    match &a.out {
        Some(path) => {
            output::publish_file(path, &bytes, 0o644, "--out")?;
            outln!("CRL number {}: {} revoked certificate(s), next update in {} days", crl.number, crl.entries, a.days)?;
        }
        None => crate::console::write_bytes(&bytes)?,
    }
    Ok(())
}
