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
    let log_path = dir.join(LOG_FILE);
    let open_err = |e: std::io::Error| CaError::Input(format!("{}: {}", log_path.display(), crate::output::reason(&e)));
    let file = std::fs::File::open(&log_path).map_err(open_err)?;
    let size = file.metadata().map_err(open_err)?.len();
    if size == 0 {
        return Ok(fail(None, "audit.log is empty"));
    }
    let start = super::chain_start(dir, &row)?;
    let mut st = State::default();
    // About one record per two entries in a large log (an adoption, then revocations).
    st.records.reserve(usize::try_from(size / 400).unwrap_or(0));
    let check_start = |e: &Entry| check_start(e, &row);
    let check_sig = |m: &[u8], s: &[u8]| bridge::verify(&public, scheme, s, |sink| Ok(sink(m)?)).unwrap_or(false);
    // ca.db is read in a thread of its own while the log is walked.
    let db_path = dir.join(crate::ca::DB_FILE);
    let (chain, rows) = std::thread::scope(|scope| {
        let scan = scope.spawn(|| scan_db(&db_path));
        let mut lines = entry::Lines::new(file);
        let chain = walk::walk(&mut lines, (&start.0, start.1), &check_start, &check_sig, &mut st);
        (chain, scan.join().expect("the ca.db scan does not panic"))
    });
    let chain = match chain? {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    let records = match compare_records(&db, &mut st, rows?, &log_path) {
        Ok(n) => n,
        Err(f) => return Ok(Err(f)),
    };
    let crls = db.crls().map_err(db_err("read the CRL records"))?;
    for c in &crls {
        let Entry::CrlRecord { number, this_update, next_update, entries, crl_sha256 } = c else { continue };
        match st.crls.remove(number) {
            None if st.open.crls.get(number).is_some_and(|(_, w)| w == &[*this_update, *next_update, *entries]) => {}
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
    if st.open.reserved > 0 {
        notes.push(format!("{} serial(s) reserved by an issuance that has not finished and wrote no entry yet (no certificate; the next command records them abandoned)", st.open.reserved));
    }
    let mut missing = 0;
    for (seq, path, sha) in &st.files {
        match crate::output::read_regular(path) {
            Ok(bytes) if &super::hex_digest(&bytes) != sha => {
                return Ok(fail(*seq, format!("{} no longer holds what this entry wrote to it", path.display())))
            }
            Ok(_) => {}
            Err(_) if path.exists() => return Ok(fail(*seq, format!("{} is no longer the regular file this entry wrote", path.display()))),
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

/// A row's serial column: a serial, or (tampering) something else, as text.
enum RowKey {
    Serial(SerialKey),
    NotASerial(String),
}

/// A ca.db certificate row, compact.
struct DbRow {
    key: RowKey,
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
                key: SerialKey::new(c.serial.as_bytes()).map_or_else(|| RowKey::NotASerial(c.serial.to_string()), RowKey::Serial),
                fields: c.fields,
                state: entry::state_code(c.state),
                revoked_at: c.revoked_at,
                reason: c.reason.and_then(CrlReason::from_name),
            },
            None => DbRow { key: RowKey::NotASerial(String::from_utf8_lossy(row).into_owned()), fields: [0; 16], state: None, revoked_at: None, reason: None },
        });
    })
    .map_err(db_err("read the records"))?;
    Ok(rows)
}

/// ca.db's certificate rows against the records the entries make: each row must be one
/// of them, the same in every field, and each of them a row.
fn compare_records(db: &Db, st: &mut State, rows: Vec<DbRow>, log: &Path) -> Result<usize, Failure> {
    let n = rows.len();
    for r in rows {
        let key = match r.key {
            RowKey::Serial(k) => k,
            RowKey::NotASerial(text) => return fail(None, format!("ca.db holds a certificate row whose serial is not a serial: {text}")),
        };
        let state = r.state.map_or("?", walk::state_name);
        let Some(e) = st.records.remove(&key) else {
            if st.open.serials.remove(&key).is_some() && matches!(state, "pending" | "issued") && r.revoked_at.is_none() {
                continue; // the unfinished issuance: reserved, or signed and recorded
            }
            if state == "pending" && r.revoked_at.is_none() {
                // Reserved by an issuance killed before its first entry (or running):
                // no certificate; the next command records it abandoned.
                st.open.reserved += 1;
                continue;
            }
            return fail(None, format!("ca.db holds serial {key} ({state}) and no entry of audit.log records it"));
        };
        let unfinished_revocation = st.open.revokes.get(&key).is_some_and(|(_, at, reason)| e.revoked_at.is_none() && r.revoked_at == *at && r.reason == *reason);
        // Logged abandoned, still pending in ca.db: a command was killed between the two
        // (the next one marks the record).
        let state_holds = Some(e.state) == r.state || (walk::state_name(e.state) == "abandoned" && state == "pending");
        if e.fields != r.fields || !state_holds || (!unfinished_revocation && (e.revoked_at != r.revoked_at || e.reason != r.reason)) {
            let seq = if e.fields != r.fields || !state_holds { e.seq } else { e.rseq };
            let fields = differing(db, st, &key, &e, log);
            return fail(seq, format!("serial {key}: ca.db's record differs from this entry in {fields}"));
        }
    }
    if let Some((serial, seq)) = st.open.serials.iter().min_by_key(|(_, s)| **s) {
        return fail(*seq, format!("serial {serial} (pending) is not in ca.db"));
    }
    if let Some((serial, e)) = st.records.iter().min_by_key(|(_, e)| e.seq) {
        return fail(e.seq, format!("serial {serial} ({}) is not in ca.db", walk::state_name(e.state)));
    }
    Ok(n)
}

/// The names of the fields in which ca.db's record of `key` differs from the expected.
fn differing(db: &Db, st: &State, key: &SerialKey, e: &Exp, log: &Path) -> String {
    let expected: Option<RecordEntry> = match st.wholes.get(key) {
        Some(r) => Some(r.clone()),
        None => line_at(log, e.seq).and_then(|l| serde_json::from_slice(&l).ok()),
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

/// Line `seq` of the log (read again: only for a record that does not hold).
fn line_at(log: &Path, seq: u64) -> Option<Vec<u8>> {
    let mut lines = entry::Lines::new(std::fs::File::open(log).ok()?);
    for _ in 1..seq {
        lines.next_line().ok()?.ok()??;
    }
    lines.next_line().ok()?.ok()?.map(<[u8]>::to_vec)
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

