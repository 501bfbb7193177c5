//! `revoke`: records certificates of a CA directory as revoked (the next `crl` lists
//! them). Several serials are revoked together or not at all.

use std::path::PathBuf;

use crate::ca::{self, db_err, CaDir, REASONS};
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
}

pub fn run(_settings: &Settings, a: Args) -> anyhow::Result<()> {
    let reason = REASONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&a.reason))
        .map(|(_, c)| *c)
        .ok_or_else(|| usage(format!("--reason {}: not one of {}", a.reason, REASONS.map(|(n, _)| n).join(", "))))?;
    let mut texts = a.serial.clone();
    if let Some(path) = &a.serials_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--serials-file {}: {}", path.display(), crate::output::reason(&e))))?;
        texts.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
        if texts.is_empty() {
            return Err(usage(format!("--serials-file {}: no serials in it", path.display())));
        }
    }
    let mut serials = Vec::with_capacity(texts.len());
    for t in &texts {
        let s = ca::parse_serial(t)?;
        if serials.contains(&s) {
            return Err(usage(format!("serial {s} is given twice; nothing was revoked")));
        }
        serials.push(s);
    }
    let mut ca = CaDir::open(&a.ca)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let outcome = ca
        .db
        .revoke(&serials, now, (reason != 0).then_some(reason), |serial, r| match r {
            None => Err(format!("serial {serial} was not issued by this CA")),
            Some(r) if r.state == "abandoned" => Err(format!("serial {serial} was never issued (its issuance did not finish)")),
            Some(r) if r.revoked_at.is_some() => Err(format!("serial {serial} is already revoked")),
            Some(_) => Ok(()),
        })
        .map_err(db_err("revoke"))?;
    if let Err(why) = outcome {
        return Err(usage(format!("{why}; nothing was revoked")));
    }
    outln!(
        "Revoked {} certificate(s) of CA {} ({}); the next CRL lists them",
        serials.len(),
        ca::subject_line(ca.cert.subject_name()),
        ca::reason_name(reason)
    )?;
    Ok(())
}
