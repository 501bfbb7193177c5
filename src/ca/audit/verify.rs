//! Checking a CA directory's log offline (no token, no PIN): the hash chain from the
//! first line (chained to transcript.txt or the CA certificate), every checkpoint's
//! signature under the CA certificate (walk.rs), then that the records in ca.db are
//! exactly what the committed entries say, field by field, and that the files the
//! entries wrote still hold what they wrote. The first entry that does not hold is
//! named.

use std::path::Path;

use openssl::x509::X509;

use super::entry::{self, Entry, Fields, RecordEntry, SerialKey};
use super::walk::{self, Exp, State};
use super::LOG_FILE;
use crate::bridge::{self, Scheme};
use crate::ca::db::Db;
use crate::ca::{db_err, CaError, CrlReason};

/// What the log shows, when it holds.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub entries: u64,
    /// The last entry: what goes on the witness sheet.
    pub head_seq: u64,
    pub head_sha256: String,
    pub checkpoints: usize,
    pub last_checkpoint: Option<u64>,
    pub records: usize,
    pub crls: usize,
    pub notes: Vec<String>,
}

/// The first thing that does not hold, with the entry it is in (None: ca.db, or the
/// log as a whole).
#[derive(Debug, thiserror::Error)]
#[error("{}{what}", entry.map(|e| format!("entry {e}: ")).unwrap_or_default())]
pub struct Failure {
    pub entry: Option<u64>,
    pub what: String,
}

pub fn fail<T>(entry: impl Into<Option<u64>>, what: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { entry: entry.into(), what: what.into() })
}

/// Verifies the log of `dir` against its ca.db. The outer error: the directory cannot
/// be read; the inner: what does not hold.
pub fn verify(dir: &Path) -> anyhow::Result<Result<Report, Failure>> {
    let db = Db::open_read_only(&dir.join(crate::ca::DB_FILE)).map_err(db_err("open"))?;
    let row = db.ca().map_err(db_err("read the CA"))?.ok_or_else(|| CaError::Input(format!("{}: ca.db holds no CA", dir.display())))?;
    let cert = X509::from_der(&row.cert_der)?;
    let public = cert.public_key()?;
    let scheme = Scheme::for_key(&public, None, None)?;
    let log = std::fs::read(dir.join(LOG_FILE)).map_err(|e| CaError::Input(format!("{}: {}", dir.join(LOG_FILE).display(), crate::output::reason(&e))))?;
    if log.is_empty() {
        return Ok(fail(None, "audit.log is empty"));
    }
    if log.last() != Some(&b'\n') {
        let n = log.len() - log.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        return Ok(fail(None, format!("audit.log ends in {n} bytes without a newline (a write cut short; the next command on the directory removes them)")));
    }
    let mut lines: Vec<&[u8]> = Vec::with_capacity(log.len() / 128);
    let mut from = 0;
    for end in memchr::memchr_iter(b'\n', &log) {
        lines.push(&log[from..end]);
        from = end + 1;
    }
    let start = super::chain_start(dir, &row)?;
    let mut st = State::default();
    st.records.reserve(lines.len() / 2);
    let check_start = |e: &Entry| check_start(e, &row);
    let check_sig = |m: &[u8], s: &[u8]| bridge::verify(&public, scheme, s, |sink| Ok(sink(m)?)).unwrap_or(false);
    // ca.db is read in a thread of its own while the log is walked.
    let db_path = dir.join(crate::ca::DB_FILE);
    let (chain, rows) = std::thread::scope(|scope| {
        let scan = scope.spawn(|| scan_db(&db_path));
        let chain = walk::walk(&lines, (&start.0, start.1), &check_start, &check_sig, &mut st);
        (chain, scan.join().expect("the ca.db scan does not panic"))
    });
    let chain = match chain {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    let records = match compare_records(&db, &mut st, rows?, &lines) {
        Ok(n) => n,
        Err(f) => return Ok(Err(f)),
    };
    let crls = db.crls().map_err(db_err("read the CRL records"))?;
    for c in &crls {
        let Entry::CrlRecord { number, this_update, next_update, entries, crl_sha256 } = c else { continue };
        match st.crls.remove(number) {
            None => return Ok(fail(None, format!("ca.db holds CRL number {number} and no entry of audit.log records it"))),
            Some((seq, w, sha)) if w != [*this_update, *next_update, *entries] || &sha != crl_sha256 => {
                return Ok(fail(seq, format!("CRL number {number}: ca.db's record differs from this entry")))
            }
            Some(_) => {}
        }
    }
    if let Some((n, (seq, ..))) = st.crls.iter().next() {
        return Ok(fail(*seq, format!("CRL number {n} is not in ca.db")));
    }
    let mut notes = chain.notes;
    let mut missing = 0;
    for (seq, path, sha) in &st.files {
        match std::fs::read(path) {
            Ok(bytes) if &super::hex_digest(&bytes) != sha => {
                return Ok(fail(*seq, format!("{} no longer holds what this entry wrote to it", path.display())))
            }
            Ok(_) => {}
            Err(_) => missing += 1,
        }
    }
    if missing > 0 {
        notes.push(format!("{missing} output file(s) the entries name are not at their paths (moved or deleted); not checked"));
    }
    Ok(Ok(Report {
        entries: chain.head_seq,
        head_seq: chain.head_seq,
        head_sha256: hex::encode(chain.head),
        checkpoints: chain.checkpoints,
        last_checkpoint: chain.last_checkpoint,
        records,
        crls: crls.len(),
        notes,
    }))
}

/// A ca.db certificate row, compact.
struct DbRow {
    /// None: the serial column does not hold a serial (its text then).
    key: Result<SerialKey, String>,
    fields: Fields,
    state: Option<u8>,
    revoked_at: Option<i64>,
    reason: Option<CrlReason>,
}

/// Every certificate row of ca.db, compact (its own read-only connection).
fn scan_db(path: &Path) -> anyhow::Result<Vec<DbRow>> {
    let db = Db::open_read_only(path).map_err(db_err("open"))?;
    let mut rows = Vec::with_capacity(db.count().map_err(db_err("count the records"))? as usize);
    let mut json = Vec::with_capacity(512);
    db.scan_rows(&mut json, |row| {
        rows.push(match entry::compact(&row[1..]) {
            Some(c) => DbRow {
                key: SerialKey::new(c.serial.as_bytes()).ok_or_else(|| c.serial.to_string()),
                fields: c.fields,
                state: entry::state_code(c.state),
                revoked_at: c.revoked_at,
                reason: c.reason.and_then(CrlReason::from_name),
            },
            None => DbRow { key: Err(String::from_utf8_lossy(row).into_owned()), fields: [0; 16], state: None, revoked_at: None, reason: None },
        });
    })
    .map_err(db_err("read the records"))?;
    Ok(rows)
}

/// ca.db's certificate rows against the records the entries make: each row must be one
/// of them, the same in every field, and each of them a row.
fn compare_records(db: &Db, st: &mut State, rows: Vec<DbRow>, lines: &[&[u8]]) -> Result<usize, Failure> {
    let n = rows.len();
    for r in rows {
        let key = r.key.map_err(|text| Failure { entry: None, what: format!("ca.db holds a certificate row whose serial is not a serial: {text}") })?;
        let state = r.state.map_or("?", walk::state_name);
        let Some(e) = st.records.remove(&key) else {
            return fail(None, format!("ca.db holds serial {key} ({state}) and no entry of audit.log records it"));
        };
        if e.fields != r.fields || Some(e.state) != r.state || e.revoked_at != r.revoked_at || e.reason != r.reason {
            let seq = if e.fields != r.fields || Some(e.state) != r.state { e.seq } else { e.rseq };
            let fields = differing(db, st, &key, &e, lines);
            return fail(seq, format!("serial {key}: ca.db's record differs from this entry in {fields}"));
        }
    }
    if let Some((serial, e)) = st.records.iter().min_by_key(|(_, e)| e.seq) {
        return fail(e.seq, format!("serial {serial} ({}) is not in ca.db", walk::state_name(e.state)));
    }
    Ok(n)
}

/// The names of the fields in which ca.db's record of `key` differs from the expected.
fn differing(db: &Db, st: &State, key: &SerialKey, e: &Exp, lines: &[&[u8]]) -> String {
    let expected: Option<RecordEntry> = match st.wholes.get(key) {
        Some(r) => Some(r.clone()),
        None => lines.get(e.seq as usize - 1).and_then(|l| serde_json::from_slice(l).ok()),
    };
    let (Some(mut x), Ok(Some(y))) = (expected, db.record_entry(&key.to_string())) else {
        return "its fields".into();
    };
    x.revoked_at = e.revoked_at;
    x.reason = e.reason.map(|r| r.name().to_string());
    let (x, y) = (serde_json::to_value(x).unwrap_or_default(), serde_json::to_value(y).unwrap_or_default());
    let names: Vec<&str> = match (&x, &y) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => x.iter().filter(|(k, v)| y.get(*k) != Some(v)).map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        "its fields".into()
    } else {
        names.join(", ")
    }
}

/// The first line must be about the CA ca.db holds.
fn check_start(entry: &Entry, row: &crate::ca::CaRow) -> Result<(), Failure> {
    let Entry::Start { ca_cert_sha256, chain_sha256, key, .. } = entry else {
        return fail(1, "the first line is not a start line");
    };
    if ca_cert_sha256 != &super::hex_digest(&row.cert_der) {
        return fail(1, "the CA certificate in ca.db is not the one this entry records");
    }
    if chain_sha256 != &super::hex_digest(row.chain_pem.as_bytes()) || key != &row.key_uri {
        return fail(1, "ca.db's CA chain or key URI is not what this entry records");
    }
    Ok(())
}

