//! `revoke`: records certificates of a CA directory as revoked (the next `crl` lists
//! them). Several serials are revoked together or not at all.

use std::path::PathBuf;

use crate::ca::{self, CaDir, CrlReason};
use crate::console::outln;
use crate::error::usage;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(false).args(["serial", "serials_file"])))]
pub struct Args {
    /// The CA directory
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,

    /// Serial of the certificate, hex (colons allowed); repeat for more
    #[arg(long, value_name = "HEX")]
    serial: Vec<String>,

    /// A file with one serial per line (blank lines and # comments ignored): all are
    /// revoked, or none
    #[arg(long, value_name = "FILE")]
    serials_file: Option<PathBuf>,

    /// CRLReason (RFC 5280 §5.3.1): unspecified, keyCompromise, cACompromise,
    /// affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn,
    /// aACompromise
    #[arg(long, value_name = "R", default_value = "unspecified")]
    reason: String,

    #[command(flatten)]
    note: super::args::NoteArg,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let note = a.note.checked()?;
    let reason = CrlReason::from_name(&a.reason).ok_or_else(|| {
        let names: Vec<&str> = CrlReason::ALL.iter().map(|r| r.name()).collect();
        usage(format!("--reason {}: not one of {}", a.reason, names.join(", ")))
    })?;
    let serials = ca::read_serials(&a.serial, a.serials_file.as_deref())?;
    let mut ca = CaDir::open(&a.ca)?;
    // The CA key signs the log's checkpoint (one signature, however many serials).
    let (hsm, selector) = super::login_for_key(settings, &ca.key_uri, super::Use::Login)?;
    let key = hsm.signing_key(&selector)?;
    let who = ca::audit::Who::of(&hsm, &ca.key_uri, note);
    ca::revoke(&mut ca, &serials, reason, &who)?;
    ca.log.checkpoint(&key)?;
    outln!(
        "Revoked {} certificate(s) of CA {} ({}); the next CRL lists them",
        serials.len(),
        ca::subject_line(ca.cert.subject_name()),
        reason.name()
    )?;
    Ok(())
}
