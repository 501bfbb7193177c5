//! `list-issued`: the records of a CA directory.

use std::path::PathBuf;

use serde::Serialize;

use crate::ca::{self, db_err, CaDir, CertRecord, CertState, CrlReason};
use crate::console::outln;
use crate::error::usage;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA directory
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,

    /// Only this serial (hex)
    #[arg(long, value_name = "HEX")]
    serial: Option<String>,

    /// Print the certificates themselves (PEM) instead of the table
    #[arg(long, conflicts_with = "json")]
    pem: bool,

    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    record: &'a CertRecord,
    status: &'static str,
    reason_name: Option<&'static str>,
}

fn status(r: &CertRecord, now: i64) -> &'static str {
    match r.state {
        CertState::Pending | CertState::Abandoned => r.state.describe(),
        _ if r.revoked_at.is_some() => "revoked",
        _ if r.not_after < now => "expired",
        _ => "valid",
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let ca = CaDir::open(&a.ca)?;
    let mut records = ca.db.all().map_err(db_err("read"))?;
    if let Some(s) = &a.serial {
        let s = ca::parse_serial(s)?;
        records.retain(|r| r.serial == s);
        if records.is_empty() {
            return Err(usage(format!("serial {s} is not in the records of {}", a.ca.display())));
        }
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if a.pem {
        for r in &records {
            if let Some(der) = &r.cert_der {
                let pem = crate::bridge::X509::from_der(der)?.to_pem()?;
                crate::console::write_bytes(&pem)?;
            }
        }
        return Ok(());
    }
    if a.json {
        let rows: Vec<Row> = records
            .iter()
            .map(|r| Row { record: r, status: status(r, now), reason_name: r.reason.map(CrlReason::name) })
            .collect();
        return super::print_json(&serde_json::json!({
            "ca": ca::subject_line(ca.cert.subject_name()),
            "certificates": rows,
        }));
    }
    outln!("CA {} ({}): {} record(s)", ca::subject_line(ca.cert.subject_name()), a.ca.display(), records.len())?;
    for r in &records {
        let until = time::OffsetDateTime::from_unix_timestamp(r.not_after).map(|t| t.date().to_string()).unwrap_or_default();
        let subject = crate::console::escape(&r.subject);
        let mut line = format!("  {:<34} {:<24} until {until}  {subject}", r.serial, status(r, now));
        if let Some(p) = &r.profile {
            line.push_str(&format!("  [{}]", crate::console::escape(p)));
        }
        if let Some(reason) = r.reason {
            line.push_str(&format!("  reason {}", reason.name()));
        }
        outln!("{line}")?;
    }
    Ok(())
}
