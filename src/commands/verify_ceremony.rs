//! `verify-ceremony`: checks a ceremony's outputs with no token and no PIN, and names
//! every file that does not hold.

use std::path::PathBuf;

use crate::ceremony::verify;
use crate::console::outln;
use crate::error::{usage, EvidenceInvalid};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ceremony's output directory
    dir: PathBuf,
}

pub fn run(settings: &crate::settings::Settings, a: Args) -> anyhow::Result<()> {
    if !a.dir.is_dir() {
        return Err(usage(format!("{} is not a directory", a.dir.display())));
    }
    let report = verify::verify(&a.dir, settings.data_dir.as_deref());
    outln!("Ceremony directory {}", a.dir.display())?;
    for f in &report.findings {
        outln!("  {:<5} {}: {}", if f.ok { "ok" } else { "FAIL" }, f.file, f.what)?;
    }
    for name in &report.unlisted {
        outln!("  note  {name}: not listed in the transcript (added after the ceremony)")?;
    }
    for (name, what) in &report.retired {
        outln!("  note  {name}: retired: {what}; it no longer opens the role")?;
    }
    let failed = report.failed();
    if failed.is_empty() {
        outln!("Ceremony verified: {} checks hold", report.findings.len())?;
        return Ok(());
    }
    Err(EvidenceInvalid(format!(
        "ceremony verification failed: {}",
        failed.join(", ")
    ))
    .into())
}
