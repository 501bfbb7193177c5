//! The CA's records: an SQLite database (`ca.db` in the CA directory) through rusqlite.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a committed transaction
//! survives a kill -9 and a power loss (SQLite "PRAGMA synchronous"). Every operation is
//! one transaction, and an issuance is two: the serial is recorded as `pending` before
//! the token signs, and the record is completed with the certificate after. Serials are
//! the primary key: a serial once recorded, even for an issuance that never finished,
//! is never used again.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::record::{CertState, CrlReason};
use super::CaError;

/// The schema; `user_version` 1.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ca (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    cert_der     BLOB NOT NULL,
    key_uri      TEXT NOT NULL,
    chain_pem    TEXT NOT NULL DEFAULT '',   -- the certificates above the CA, up to the root
    created_at   INTEGER NOT NULL,
    crl_number   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS certs (
    serial       TEXT PRIMARY KEY,          -- uppercase hex, as openssl ca's index.txt
    state        TEXT NOT NULL CHECK (state IN ('pending', 'issued', 'abandoned', 'imported')),
    subject      TEXT NOT NULL,
    profile      TEXT,
    not_before   INTEGER,
    not_after    INTEGER NOT NULL,
    cert_der     BLOB,
    revoked_at   INTEGER,
    reason       INTEGER,
    created_at   INTEGER NOT NULL,
    CHECK ((state = 'issued') = (cert_der IS NOT NULL))
);
-- The CRL's scan: every revoked serial in serial order from the index alone.
CREATE INDEX IF NOT EXISTS revoked ON certs (serial, revoked_at, reason) WHERE revoked_at IS NOT NULL;
-- Interrupted issuances, looked for by every command on the directory: without it, a
-- walk of the primary key and a table lookup per record (seconds at a million).
CREATE INDEX IF NOT EXISTS pending ON certs (serial) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS crls (
    number       INTEGER PRIMARY KEY,
    this_update  INTEGER NOT NULL,
    next_update  INTEGER NOT NULL,
    entries      INTEGER NOT NULL,
    sha256       BLOB NOT NULL            -- of the CRL's DER (the CRL itself is the --out file)
);
PRAGMA user_version = 1;
";

pub struct Db {
    pub(super) conn: Connection,
}

/// A transaction whose changes are made and not yet committed.
pub struct Uncommitted<'c>(rusqlite::Transaction<'c>);

impl Uncommitted<'_> {
    pub fn commit(self) -> DbResult<()> {
        self.0.commit()
    }
}

/// One certificate record.
#[derive(Debug, Clone, Serialize)]
pub struct CertRecord {
    pub serial: String,
    pub state: CertState,
    pub subject: String,
    pub profile: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
    /// None: not revoked, or revoked with no reason code (unspecified).
    pub reason: Option<CrlReason>,
    #[serde(skip)]
    pub cert_der: Option<Vec<u8>>,
}

/// The CA row.
pub struct CaRow {
    pub cert_der: Vec<u8>,
    pub key_uri: String,
    pub chain_pem: String,
}

pub type DbResult<T> = Result<T, rusqlite::Error>;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Db {
    pub fn open(path: &Path) -> DbResult<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(60))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;

        conn.execute_batch(SCHEMA)?;
        Ok(Db { conn })
    }

    /// How many certificate records there are.
    pub fn count(&self) -> DbResult<i64> {
        self.conn.query_row("SELECT COUNT(*) FROM certs", [], |r| r.get(0))
    }

    /// Moves the write-ahead log into the database file (before it is renamed into
    /// place: the file then holds everything on its own).
    pub fn checkpoint(&self) -> DbResult<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    }

    /// Opens existing records for reading only (no schema change, no journal mode set).
    pub fn open_read_only(path: &Path) -> DbResult<Db> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_secs(60))?;
        Ok(Db { conn })
    }

    pub fn ca(&self) -> DbResult<Option<CaRow>> {
        self.conn
            .query_row("SELECT cert_der, key_uri, chain_pem FROM ca WHERE id = 1", [], |r| {
                Ok(CaRow { cert_der: r.get(0)?, key_uri: r.get(1)?, chain_pem: r.get(2)? })
            })
            .optional()
    }

    /// Records the CA and, in the same transaction, any imported records.
    pub fn init(&mut self, ca: &CaRow, imported: &[CertRecord]) -> DbResult<()> {
        let progress = crate::console::Progress::new(imported.len() as u64, "records", false);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO ca (id, cert_der, key_uri, chain_pem, created_at) VALUES (1, ?1, ?2, ?3, ?4)",
            params![ca.cert_der, ca.key_uri, ca.chain_pem, now()],
        )?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO certs (serial, state, subject, not_after, revoked_at, reason, created_at)
                 VALUES (?1, 'imported', ?2, ?3, ?4, ?5, ?6)",
            )?;
            let t = now();
            for r in imported {
                ins.execute(params![r.serial, r.subject, r.not_after, r.revoked_at, r.reason, t])?;
                progress.tick();
            }
        }
        tx.commit()?;
        progress.finish();
        Ok(())
    }

    /// The serials an interrupted issuance left `pending`.
    pub fn pending(&self) -> DbResult<Vec<String>> {
        let mut q = self.conn.prepare("SELECT serial FROM certs WHERE state = 'pending' ORDER BY serial")?;
        let rows = q.query_map([], |r| r.get(0))?;
        rows.collect()
    }

    /// Marks what interrupted issuances left `pending` (the serials [`Db::pending`]
    /// returned) as `abandoned`. Only called under the CA directory's exclusive lock, so
    /// no live process owns a pending record.
    pub fn resolve_pending(&mut self) -> DbResult<()> {
        self.conn.execute("UPDATE certs SET state = 'abandoned' WHERE state = 'pending'", [])?;
        Ok(())
    }

    /// Records `serial` as pending at `at`; false if the serial was ever recorded.
    pub fn reserve(&mut self, r: &CertRecord, at: i64) -> DbResult<bool> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM certs WHERE serial = ?1)", [&r.serial], |x| x.get(0))?;
        if taken {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO certs (serial, state, subject, profile, not_before, not_after, created_at)
             VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6)",
            params![r.serial, r.subject, r.profile, r.not_before, r.not_after, at],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Completes a pending record with its certificate.
    pub fn complete(&mut self, serial: &str, der: &[u8]) -> DbResult<()> {
        let n = self.conn.execute(
            "UPDATE certs SET state = 'issued', cert_der = ?2 WHERE serial = ?1 AND state = 'pending'",
            params![serial, der],
        )?;
        if n != 1 {
            return Err(rusqlite::Error::QueryReturnedNoRows);
        }
        Ok(())
    }

    /// Marks a pending record abandoned (the issuance failed after the reservation).
    pub fn abandon(&mut self, serial: &str) -> DbResult<()> {
        self.conn.execute("UPDATE certs SET state = 'abandoned' WHERE serial = ?1 AND state = 'pending'", [serial])?;
        Ok(())
    }

    pub fn all(&self) -> DbResult<Vec<CertRecord>> {
        let mut q = self.conn.prepare(&format!("{SELECT} ORDER BY created_at, serial"))?;
        let rows = q.query_map([], record)?;
        rows.collect()
    }

    /// Revokes every serial of `serials` in one transaction, or none. `check` sees
    /// each record first and says why it cannot be revoked. The transaction is handed
    /// back uncommitted (the log's entries go to disk before it commits); dropped, it
    /// rolls back.
    pub fn revoke(
        &mut self,
        serials: &[String],
        at: i64,
        reason: Option<CrlReason>,
        check: impl Fn(&str, Option<&CertRecord>) -> Result<(), CaError>,
        progress: &crate::console::Progress,
    ) -> DbResult<Result<Uncommitted<'_>, CaError>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut get = tx.prepare(&format!("{SELECT} WHERE serial = ?1"))?;
            let mut set = tx.prepare("UPDATE certs SET revoked_at = ?2, reason = ?3 WHERE serial = ?1")?;
            for s in serials {
                let r = get.query_row([s], record).optional()?;
                if let Err(why) = check(s, r.as_ref()) {
                    return Ok(Err(why)); // the transaction rolls back on drop
                }
                set.execute(params![s, at, reason])?;
                progress.tick();
            }
        }
        Ok(Ok(Uncommitted(tx)))
    }

    /// Whether any record was imported from an `openssl ca` index.
    pub fn has_imported(&self) -> DbResult<bool> {
        self.conn.query_row("SELECT EXISTS (SELECT 1 FROM certs WHERE state = 'imported')", [], |r| r.get(0))
    }

    /// The DER of every certificate issued here, to `f`.
    pub fn for_each_issued_cert(&self, mut f: impl FnMut(&[u8])) -> DbResult<()> {
        let mut q = self.conn.prepare("SELECT cert_der FROM certs WHERE state = 'issued'")?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            if let rusqlite::types::ValueRef::Blob(b) = r.get_ref(0)? {
                f(b);
            }
        }
        Ok(())
    }

    /// The next CRL number, taken for good (numbers only increase, RFC 5280 §5.2.3).
    pub fn next_crl_number(&mut self) -> DbResult<i64> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("UPDATE ca SET crl_number = crl_number + 1 WHERE id = 1", [])?;
        let n = tx.query_row("SELECT crl_number FROM ca WHERE id = 1", [], |r| r.get(0))?;
        tx.commit()?;
        Ok(n)
    }

    /// Every revoked serial with its time and reason, in serial order, to `f`.
    pub fn for_each_revoked(&self, mut f: impl FnMut(&str, i64, Option<CrlReason>)) -> DbResult<usize> {
        let mut q = self.conn.prepare(
            "SELECT serial, revoked_at, reason FROM certs WHERE revoked_at IS NOT NULL ORDER BY serial",
        )?;
        let mut rows = q.query([])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let serial: String = r.get(0)?;
            f(&serial, r.get(1)?, r.get(2)?);
            n += 1;
        }
        Ok(n)
    }

    pub fn record_crl(&mut self, number: i64, this: i64, next: i64, entries: usize, sha256: &[u8]) -> DbResult<()> {
        self.conn.execute(
            "INSERT INTO crls (number, this_update, next_update, entries, sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![number, this, next, entries as i64, sha256],
        )?;
        Ok(())
    }
}

pub(super) const SELECT: &str =
    "SELECT serial, state, subject, profile, not_before, not_after, revoked_at, reason, cert_der FROM certs";

pub(super) fn record(r: &rusqlite::Row<'_>) -> DbResult<CertRecord> {
    Ok(CertRecord {
        serial: r.get(0)?,
        state: r.get(1)?,
        subject: r.get(2)?,
        profile: r.get(3)?,
        not_before: r.get(4)?,
        not_after: r.get(5)?,
        revoked_at: r.get(6)?,
        reason: r.get(7)?,
        cert_der: r.get(8)?,
    })
}
