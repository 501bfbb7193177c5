//! `verify-audit`: checks a CA directory's operations log offline (no token, no PIN)
//! against its records, and prints the head for the witness sheet.

use std::path::PathBuf;

use crate::ca::audit;
use crate::console::outln;
use crate::error::{usage, EvidenceInvalid};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA directory (a key ceremony's --out, or one made by ca-init)
    dir: PathBuf,

    /// Print the result as JSON (the head, counts and notes)
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if !a.dir.join(audit::LOG_FILE).is_file() || !a.dir.join(crate::ca::DB_FILE).is_file() {
        return Err(usage(format!(
            "{}: no audit.log and ca.db here (a CA directory's log begins with the first command on it)",
            a.dir.display()
        )));
    }
    let report = audit::verify(&a.dir)?.map_err(|f| EvidenceInvalid(format!("{}: audit.log does not hold: {f}", a.dir.display())))?;
    if a.json {
        return super::print_json(&report);
    }
    outln!("Audit log {}", a.dir.join(audit::LOG_FILE).display())?;
    outln!("  ok    hash chain: {} entries, each carrying the SHA-256 of the one before", report.entries)?;
    match report.last_checkpoint {
        Some(c) => outln!("  ok    {} checkpoint signature(s) verify under the CA certificate; the last is entry {c}", report.checkpoints)?,
        None => outln!("  note  no checkpoint signature yet")?,
    }
    outln!("  ok    ca.db: its {} certificate record(s) and {} CRL record(s) are what the entries say", report.records, report.crls)?;
    for n in &report.notes {
        outln!("  note  {n}")?;
    }
    outln!("Head (for the witness sheet): entry {} sha256 {}", report.head_seq, report.head_sha256)?;
    Ok(())
}
