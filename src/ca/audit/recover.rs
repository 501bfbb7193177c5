//! Closing the group a killed command left open, from what ca.db shows: the records
//! hold its result (a certificate completed, revocations committed, a CRL recorded), so
//! it is committed now; or they do not, and it is abandoned (its serial or CRL number
//! is never used again). Only runs under the CA directory's lock, so the command that
//! began the group is dead.

use serde_json::{Map, Value};

use super::{Entry, Log};
use crate::ca::db::Db;
use crate::ca::{db_err, CertState};

/// What the open group holds.
#[derive(Default)]
struct OpenGroup {
    begin: u64,
    command: String,
    at: Option<i64>,
    issue: Option<String>,
    first_revoke: Option<String>,
    revokes: usize,
    crl: Option<i64>,
}

fn read_open_group(log: &Log) -> anyhow::Result<OpenGroup> {
    let mut lines = super::entry::Lines::new(std::fs::File::open(&log.path)?);
    let mut g = OpenGroup::default();
    // Whole lines only: a cut last line was removed before this runs.
    while let Ok(Some(l)) = lines.next_line()? {
        let Some(h) = super::entry::head(l) else { continue };
        let serial = || super::entry::revoke_serial(h.rest).map(String::from);
        match h.kind {
            b"begin" => {
                g = OpenGroup { begin: h.seq, ..OpenGroup::default() };
                if let Ok(Entry::Begin { command, inputs, .. }) = serde_json::from_slice(l) {
                    g.command = command;
                    g.at = inputs.get("at").and_then(Value::as_i64);
                }
            }
            b"revoke" => {
                g.revokes += 1;
                if g.first_revoke.is_none() {
                    g.first_revoke = serial();
                }
            }
            b"issue" => {
                if let Ok(Entry::Issue { serial, .. }) = serde_json::from_slice(l) {
                    g.issue = Some(serial);
                }
            }
            b"crl" => {
                if let Ok(Entry::Crl { number, .. }) = serde_json::from_slice(l) {
                    g.crl = Some(number);
                }
            }
            _ => {}
        }
    }
    Ok(g)
}

/// Closes the open group; removes from `abandoned` the serials it accounts for.
/// Returns notes for stderr.
pub(super) fn close_open_group(log: &mut Log, db: &mut Db, abandoned: &mut Vec<String>) -> anyhow::Result<Vec<String>> {
    let g = read_open_group(log)?;
    let mut outputs = Map::new();
    outputs.insert("closed_after_interruption".into(), true.into());
    let committed = match g.command.as_str() {
        "issue" => match &g.issue {
            Some(serial) => {
                abandoned.retain(|s| s != serial);
                match db.get(serial).map_err(db_err("read a record"))? {
                    Some(r) if r.state == CertState::Issued => {
                        outputs.insert("serial".into(), serial.clone().into());
                        let der = r.cert_der.unwrap_or_default();
                        outputs.insert("cert_sha256".into(), super::hex_digest(&der).into());
                        true
                    }
                    _ => false,
                }
            }
            None => false,
        },
        "revoke" => match (&g.first_revoke, g.at) {
            (Some(serial), Some(at)) => {
                let r = db.get(serial).map_err(db_err("read a record"))?;
                let done = r.is_some_and(|r| r.revoked_at == Some(at));
                outputs.insert("revoked".into(), g.revokes.into());
                done
            }
            _ => false,
        },
        "crl" => match g.crl {
            Some(number) => match db.crl_sha256(number).map_err(db_err("read a CRL record"))? {
                Some(sha) => {
                    outputs.insert("crl_sha256".into(), hex::encode(sha).into());
                    true
                }
                None => false,
            },
            None => false,
        },
        _ => false,
    };
    let note = if committed {
        log.open = Some(g.begin);
        log.commit(outputs)?;
        format!("audit.log: the {} begun at entry {} was interrupted after its records were written; its entries are committed", g.command, g.begin)
    } else {
        let serials: Vec<String> = g.issue.iter().cloned().collect();
        let serials = records_of(db, &serials)?;
        let why = match g.crl {
            Some(n) => format!("interrupted before its result was recorded (CRL number {n} was taken and is not used)"),
            None => "interrupted before its result was recorded".to_string(),
        };
        log.open = Some(g.begin);
        log.abandon(&why, serials)?;
        format!("audit.log: the {} begun at entry {} did not finish; it is recorded as abandoned", g.command, g.begin)
    };
    Ok(vec![note])
}

/// The records of `serials` as ca.db holds them once marked abandoned (the log says
/// so first; the records follow).
pub(super) fn records_of(db: &Db, serials: &[String]) -> anyhow::Result<Vec<super::RecordEntry>> {
    let mut out = Vec::new();
    for s in serials {
        if let Some(mut r) = db.record_entry(s).map_err(db_err("read a record"))? {
            r.state = CertState::Abandoned.as_str().to_string();
            out.push(r);
        }
    }
    Ok(out)
}
