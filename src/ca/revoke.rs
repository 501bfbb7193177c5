//! Revocation: serials recorded as revoked (the next CRL lists them), all of a request
//! or none.

use std::collections::HashSet;
use std::path::Path;

use super::record::{CertState, CrlReason};
use super::{audit, db_err, parse_serial, CaDir, CaError};

/// The serials of `--serial` values and a serials file (one per line, blank lines and
/// `#` comments ignored), normalised; a serial given twice is refused. Linear in the
/// number of serials.
pub fn read_serials(given: &[String], file: Option<&Path>) -> Result<Vec<String>, CaError> {
    let mut texts: Vec<String> = given.to_vec();
    if let Some(path) = file {
        let text = crate::output::read_regular_text(path)
            .map_err(|e| CaError::Input(format!("--serials-file {}: {}", path.display(), crate::output::reason(&e))))?;
        texts.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
        if texts.is_empty() {
            return Err(CaError::Input(format!("--serials-file {}: no serials in it", path.display())));
        }
    }
    let mut seen = HashSet::with_capacity(texts.len());
    let mut serials = Vec::with_capacity(texts.len());
    for t in &texts {
        let s = parse_serial(t)?;
        if !seen.insert(s.clone()) {
            return Err(CaError::Input(format!("serial {s} is given twice; nothing was revoked")));
        }
        serials.push(s);
    }
    Ok(serials)
}

/// Revokes every serial of `serials` in one transaction, or none (each must have been
/// issued or imported by this CA, and not be revoked already). The log's entries (one
/// per serial) are on disk before the records' transaction commits, and its `commit`
/// after.
pub fn revoke(ca: &mut CaDir, serials: &[String], reason: CrlReason, who: &audit::Who) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let refuse = |why: String| CaError::Input(format!("{why}; nothing was revoked"));
    let stored = (reason != CrlReason::Unspecified).then_some(reason);
    let progress = crate::console::Progress::new(serials.len() as u64, "serials", false);
    let tx = ca
        .db
        .revoke(serials, now, stored, |serial, r| match r {
            None => Err(refuse(format!("serial {serial} was not issued by this CA"))),
            Some(r) if r.state == CertState::Abandoned => {
                Err(refuse(format!("serial {serial} was never issued (its issuance did not finish)")))
            }
            Some(r) if r.revoked_at.is_some() => Err(refuse(format!("serial {serial} is already revoked"))),
            Some(_) => Ok(()),
        }, &progress)
        .map_err(db_err("revoke"))??;
    progress.finish();
    let mut inputs = serde_json::Map::new();
    inputs.insert("at".into(), now.into());
    inputs.insert("reason".into(), reason.name().into());
    inputs.insert("count".into(), serials.len().into());
    ca.log.begin("revoke", who, inputs);
    for s in serials {
        ca.log.push_revoke(s);
    }
    ca.log.flush()?;
    tx.commit().map_err(db_err("revoke"))?;
    let mut outputs = serde_json::Map::new();
    outputs.insert("revoked".into(), serials.len().into());
    ca.log.commit_before_checkpoint(outputs);
    Ok(())
}
