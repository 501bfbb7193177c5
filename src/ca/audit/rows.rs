//! ca.db as the audit log reads it: certificate rows as `record` entries (adoption,
//! recovery), and the verifier's scan, which writes each row as the JSON object the log
//! writes for it without an allocation per row.

use rusqlite::types::ValueRef;
use rusqlite::OptionalExtension;
use serde::Serialize;

use super::entry::{Entry, RecordEntry};
use crate::ca::db::{record, CertRecord, Db, DbResult, SELECT};
use crate::ca::{CertState, CrlReason};

/// A certificate row as read, borrowed from SQLite: it serializes exactly as the
/// [`RecordEntry`] it becomes (same fields, same order).
#[derive(Serialize)]
struct RowRef<'a> {
    serial: &'a str,
    state: &'a str,
    subject: &'a str,
    profile: Option<&'a str>,
    not_before: Option<i64>,
    not_after: i64,
    created_at: i64,
    cert_sha256: Option<&'a str>,
    revoked_at: Option<i64>,
    reason: Option<&'a str>,
}

impl RowRef<'_> {
    fn owned(&self) -> RecordEntry {
        RecordEntry {
            serial: self.serial.into(),
            state: self.state.into(),
            subject: self.subject.into(),
            profile: self.profile.map(String::from),
            not_before: self.not_before,
            not_after: self.not_after,
            created_at: self.created_at,
            cert_sha256: self.cert_sha256.map(String::from),
            revoked_at: self.revoked_at,
            reason: self.reason.map(String::from),
        }
    }
}

impl Db {
    /// The record of `serial`, if any.
    pub fn get(&self, serial: &str) -> DbResult<Option<CertRecord>> {
        self.conn.query_row(&format!("{SELECT} WHERE serial = ?1"), [serial], record).optional()
    }

    /// The SHA-256 recorded for CRL `number`, if that CRL was recorded.
    pub fn crl_sha256(&self, number: i64) -> DbResult<Option<Vec<u8>>> {
        self.conn.query_row("SELECT sha256 FROM crls WHERE number = ?1", [number], |r| r.get(0)).optional()
    }

    /// Every certificate record, in serial order, as the audit log records it.
    pub fn for_each_row(&self, mut f: impl FnMut(RecordEntry)) -> DbResult<()> {
        self.each_row("ORDER BY serial", [], |r| f(r.owned()))
    }

    /// The record of `serial` as the audit log records it.
    pub fn record_entry(&self, serial: &str) -> DbResult<Option<RecordEntry>> {
        let mut found = None;
        self.each_row("WHERE serial = ?1", [serial], |r| found = Some(r.owned()))?;
        Ok(found)
    }

    /// Every certificate record, in table order, as the JSON object the audit log
    /// writes for it (byte for byte what serde writes for a [`RecordEntry`]), in `buf`,
    /// to `f`: the audit verifier's scan, without an allocation per row.
    pub fn scan_rows(&self, buf: &mut Vec<u8>, mut f: impl FnMut(&[u8])) -> DbResult<()> {
        self.each_row("", [], |row| {
            buf.clear();
            serde_json::to_writer(&mut *buf, row).expect("records serialize");
            f(buf);
        })
    }

    /// The certificate rows `tail` selects, each read once into a [`RowRef`]: the one
    /// reading of a row the log's adoption, recovery and verifier share.
    fn each_row<P: rusqlite::Params>(&self, tail: &str, p: P, mut f: impl FnMut(&RowRef<'_>)) -> DbResult<()> {
        let mut q = self.conn.prepare(&format!(
            "SELECT serial, state, subject, profile, not_before, not_after, created_at, cert_der, revoked_at, reason FROM certs {tail}"
        ))?;
        let mut rows = q.query(p)?;
        let mut hex_buf = [0u8; 64];
        while let Some(r) = rows.next()? {
            let text = |i: usize| -> DbResult<Option<&str>> {
                match r.get_ref(i)? {
                    ValueRef::Null => Ok(None),
                    v => v.as_str().map(Some).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(e))),
                }
            };
            let state: CertState = r.get(1)?;
            let reason: Option<CrlReason> = r.get(9)?;
            // Whatever the column holds is hashed: a value of the wrong type is a record
            // that differs, not an unreadable database.
            let cert = match r.get_ref(7)? {
                ValueRef::Null => None,
                ValueRef::Blob(b) | ValueRef::Text(b) => Some(super::line_hash(b)),
                ValueRef::Integer(_) | ValueRef::Real(_) => Some(super::line_hash(b"(not a certificate)")),
            };
            let cert_sha256 = match cert {
                Some(d) => {
                    hex::encode_to_slice(d, &mut hex_buf).expect("64 hex digits");
                    Some(std::str::from_utf8(&hex_buf).expect("hex"))
                }
                None => None,
            };
            f(&RowRef {
                serial: text(0)?.unwrap_or_default(),
                state: state.as_str(),
                subject: text(2)?.unwrap_or_default(),
                profile: text(3)?,
                not_before: r.get(4)?,
                not_after: r.get(5)?,
                created_at: r.get(6)?,
                cert_sha256,
                revoked_at: r.get(8)?,
                reason: reason.map(CrlReason::name),
            });
        }
        Ok(())
    }

    /// Every CRL record, as the audit log records it.
    pub fn crls(&self) -> DbResult<Vec<Entry>> {
        let mut q = self.conn.prepare("SELECT number, this_update, next_update, entries, sha256 FROM crls ORDER BY number")?;
        let rows = q.query_map([], |r| {
            Ok(Entry::CrlRecord {
                number: r.get(0)?,
                this_update: r.get(1)?,
                next_update: r.get(2)?,
                entries: r.get(3)?,
                crl_sha256: hex::encode(r.get::<_, Vec<u8>>(4)?),
            })
        })?;
        rows.collect()
    }
}

