//! A CA directory: the CA's certificate, the PKCS#11 URI of its token key, and its
//! records (`ca.db`, see `db.rs`). `key-ceremony --out DIR` makes one (adopted on first
//! use from `root-ca.pem` and the transcript's key URI); `ca-init` adopts any CA whose
//! key is in a token. Every command on a CA directory holds its lock (`ca.lock`,
//! flock(2), exclusive) for its whole run: two issuers take turns, and a record left
//! `pending` is always from a process that died.

mod additions;
mod applicant;
pub mod aws_pca;
pub mod audit;
mod crl;
mod db;
mod index;
mod issue;
mod names;
mod profile;
mod record;
mod revoke;
pub mod validate;

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use openssl::bn::BigNum;
use openssl::x509::X509;

use crate::bridge;

pub use additions::{Additions, Given};
pub use applicant::Applicant;
pub use crl::{crl_windows, make_crl, only_ca_certificates, CrlOutput, Schedule};
pub use db::{CaRow, CertRecord, Db};
pub use index::parse_index;
pub use issue::{check_issuer, issue, subject_line, IssueOptions};
pub use names::{parse_alt_name, parse_dn};
pub use profile::{IssueProfile, RootProfile};
pub use record::{CertState, CrlReason};
pub use revoke::{read_serials, revoke};

/// What a CA operation refuses or fails with; error.rs gives each kind its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A rule refused what would have been signed: nothing recorded, nothing written.
    #[error("refused by rule '{rule}': {detail}; nothing was recorded or written")]
    Refused { rule: &'static str, detail: String },
    /// An input the user can correct (a directory, a serial, a profile, a chain).
    #[error("{0}")]
    Input(String),
    /// The records in ca.db.
    #[error("CA records: {what}: {source}")]
    Records {
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A check after the token signed did not hold: what was checked before signing
    /// should have refused it, so this is a defect of hsm-demo.
    #[error("{0} (a check after signing failed: a defect of hsm-demo; nothing was written)")]
    Defect(String),
}

/// A refusal by `rule`, naming the value.
pub fn refuse(rule: &'static str, detail: impl std::fmt::Display) -> CaError {
    CaError::Refused { rule, detail: detail.to_string() }
}

fn usage(msg: String) -> CaError {
    CaError::Input(msg)
}

pub const DB_FILE: &str = "ca.db";
const LOCK_FILE: &str = "ca.lock";

/// An open CA directory, locked.
pub struct CaDir {
    pub path: PathBuf,
    pub db: Db,
    pub cert: X509,
    /// The certificates above the CA, up to the root (empty for a root).
    pub chain: Vec<X509>,
    pub key_uri: String,
    /// The operations log (`audit.log`), open for this command's entries.
    pub log: audit::Log,
    _lock: File,
}

/// The database error, saying what was being done.
pub fn db_err(what: &'static str) -> impl Fn(rusqlite::Error) -> CaError {
    move |source| CaError::Records { what, source }
}

fn lock(dir: &Path) -> anyhow::Result<File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .with_context(|| format!("open {}", dir.join(LOCK_FILE).display()))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("lock {}", dir.join(LOCK_FILE).display()))?;
    Ok(f)
}

/// A CA directory's lock, held by `ca-init` from before it touches the token until
/// its records are in place (lock order: the CA directory, then the token store; see
/// lock.rs).
pub struct DirLock {
    dir: PathBuf,
    _file: File,
    /// Whether this run created the directory (removed again if the set-up fails).
    created: bool,
}

impl DirLock {
    /// Locks `dir` for setting up a CA, creating it (0700) if it is missing.
    pub fn new(dir: &Path) -> anyhow::Result<DirLock> {
        let created = !dir.exists();
        if created {
            crate::output::create_private_dir(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        Ok(DirLock { dir: dir.to_path_buf(), _file: lock(dir)?, created })
    }

    /// A set-up that failed: a directory this run created goes again.
    pub fn abandon(self) {
        if self.created {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether `path` holds records without a CA (an empty or zero-length ca.db, left by
/// a set-up that was interrupted before its rename existed): it can be set up again.
fn holds_no_ca(path: &Path) -> bool {
    match Db::open_read_only(path) {
        Ok(db) => db.ca().ok().flatten().is_none() && db.count().unwrap_or(0) == 0,
        Err(_) => std::fs::metadata(path).is_ok_and(|m| m.len() == 0),
    }
}

/// Builds ca.db for `row` and `imported` under a temporary name and renames it in: no
/// reader ever sees a ca.db without its CA row. `replace` puts it over a ca.db that
/// holds no CA (its journal files go first).
fn build_db(dir: &Path, row: &CaRow, imported: &[CertRecord], replace: bool) -> anyhow::Result<()> {
    let db_path = dir.join(DB_FILE);
    let tmp = dir.join(format!(".{DB_FILE}.{}", std::process::id()));
    let made = (|| -> anyhow::Result<()> {
        let mut db = Db::open(&tmp).map_err(db_err("create"))?;
        db.init(row, imported).map_err(db_err("record the CA"))?;
        db.checkpoint().map_err(db_err("write the records"))?;
        drop(db);
        if replace {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
            }
            std::fs::rename(&tmp, &db_path).context("put ca.db in place")?;
        } else {
            crate::output::rename_no_replace(&tmp, &db_path).context("put ca.db in place")?;
        }
        crate::output::sync_dir(dir).context("sync the CA directory")?;
        Ok(())
    })();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
    }
    made
}

impl CaDir {
    /// Opens `dir` as a CA directory: its records, or, for a ceremony's output
    /// directory that has none yet (or only an empty ca.db from an interrupted first
    /// use), records made from its root certificate and the transcript's key URI, put in
    /// place whole. Pending records of interrupted issuances are resolved (marked
    /// abandoned, their serials never reused) and reported on stderr.
    pub fn open(dir: &Path) -> anyhow::Result<CaDir> {
        if !dir.is_dir() {
            return Err(usage(format!("--ca {}: no such directory", dir.display())).into());
        }
        let lock = lock(dir)?;
        let db_path = dir.join(DB_FILE);
        let exists = db_path.exists();
        if !exists || holds_no_ca(&db_path) {
            match ceremony_row(dir) {
                Ok(row) => build_db(dir, &row, &[], exists)?,
                Err(_) if exists => {
                    return Err(usage(format!(
                        "{} holds no CA records (a set-up that was interrupted); set it up again with 'hsm-demo ca-init --ca {} --cert CERT --label KEY'",
                        db_path.display(),
                        dir.display()
                    ))
                    .into())
                }
                Err(e) => return Err(e),
            }
        }
        let mut db = Db::open(&db_path).map_err(db_err("open"))?;
        let row = db
            .ca()
            .map_err(db_err("read the CA"))?
            .ok_or_else(|| usage(format!("{} holds no CA (run hsm-demo ca-init)", db_path.display())))?;
        // The log says a reservation is abandoned before the records do: a kill in
        // between leaves a pending row the next command finds already in the log.
        let pending = db.pending().map_err(db_err("read interrupted issuances"))?;
        let (log, notes) = audit::Log::open(dir, &mut db, &row, &pending)?;
        for n in notes {
            crate::console::note(&n);
        }
        db.resolve_pending().map_err(db_err("resolve interrupted issuances"))?;
        for serial in &pending {
            crate::console::note(&format!(
                "serial {serial} was reserved by an issuance that did not finish; it is marked abandoned and never reused"
            ));
        }
        let cert = X509::from_der(&row.cert_der).context("the CA certificate in ca.db")?;
        let chain = if row.chain_pem.is_empty() {
            Vec::new()
        } else {
            X509::stack_from_pem(row.chain_pem.as_bytes()).context("the CA chain in ca.db")?
        };
        Ok(CaDir {
            path: dir.to_path_buf(),
            db,
            cert,
            chain,
            key_uri: row.key_uri,
            log,
            _lock: lock,
        })
    }

    /// Makes the directory `lock` holds a CA directory for `row`, with `imported`
    /// records from an `openssl ca` index, and starts its log with a `ca-init` group
    /// (`inputs`: what it was given). Refuses a directory that already has a CA's
    /// records; one that holds an empty ca.db (and no log) is set up again.
    pub fn init(lock: &DirLock, row: &CaRow, imported: &[CertRecord], inputs: serde_json::Map<String, serde_json::Value>, note: Option<&str>) -> anyhow::Result<()> {
        let dir = &lock.dir;
        let db_path = dir.join(DB_FILE);
        let exists = db_path.exists();
        if exists && !holds_no_ca(&db_path) {
            return Err(usage(format!("{} already holds a CA's records; nothing was changed", db_path.display())).into());
        }
        if dir.join(audit::LOG_FILE).exists() {
            return Err(usage(format!("{} holds an audit.log without the records it describes; move it away to set the directory up again", dir.display())).into());
        }
        build_db(dir, row, imported, exists)?;
        let db = Db::open(&db_path).map_err(db_err("open"))?;
        audit::Log::create(dir, &db, row, "ca-init", inputs, note)
    }

    /// Refuses, before anything happens, an operation on a key that is not this CA's.
    pub fn require_key(&self, public: &bridge::PKey<bridge::Public>, what: &str) -> Result<(), CaError> {
        let ours = self.cert.public_key().is_ok_and(|k| k.public_eq(public));
        if !ours {
            return Err(usage(format!(
                "--ca {}: its CA key is not {what}; nothing was changed",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Records in the log an operation on the CA key that changed no records (a
    /// backup, a restore, a re-deal): one group, then a checkpoint if `key` (the CA key,
    /// on some token) can sign one.
    pub fn record(
        &mut self,
        command: &str,
        who: &audit::Who,
        (inputs, outputs): (serde_json::Map<String, serde_json::Value>, serde_json::Map<String, serde_json::Value>),
        key: Option<&crate::hsm::SigningKey<'_>>,
    ) -> anyhow::Result<()> {
        self.log.begin(command, who, inputs);
        match key {
            Some(key) => {
                self.log.commit_before_checkpoint(outputs);
                self.log.checkpoint(key)
            }
            None => self.log.commit(outputs),
        }
    }

    /// The CA certificate and the chain above it, PEM, for `--chain`.
    pub fn chain_pem(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = self.cert.to_pem()?;
        for c in &self.chain {
            out.extend(c.to_pem()?);
        }
        Ok(out)
    }
}

/// A ceremony directory's CA: `root-ca.pem` and the key URI its transcript's Step 1
/// records.
fn ceremony_row(dir: &Path) -> anyhow::Result<CaRow> {
    let not_ca = || usage(format!(
        "{} is not a CA directory: no {DB_FILE}, and no ceremony outputs (root-ca.pem, transcript.txt) to adopt; run hsm-demo ca-init",
        dir.display()
    ));
    let pem = std::fs::read(dir.join("root-ca.pem")).map_err(|_| not_ca())?;
    let transcript = std::fs::read_to_string(dir.join("transcript.txt")).map_err(|_| not_ca())?;
    let key_uri = transcript
        .lines()
        .find_map(|l| l.trim().strip_prefix("uri:").map(|u| u.trim().to_string()))
        .filter(|u| u.starts_with("pkcs11:"))
        .ok_or_else(|| usage(format!("{}: the transcript names no key URI", dir.display())))?;
    let cert = X509::from_pem(&pem).context("root-ca.pem")?;
    Ok(CaRow {
        cert_der: cert.to_der()?,
        key_uri,
        chain_pem: String::new(),
    })
}

/// A serial as the records and `openssl ca`'s index.txt write it: uppercase hex, whole
/// bytes, no leading zero byte.
pub fn serial_hex(bytes: &[u8]) -> anyhow::Result<String> {
    Ok(BigNum::from_slice(bytes)?.to_hex_str()?.to_string())
}

/// A serial given by a user (`--serial`, a serials file): hex, colons allowed.
pub fn parse_serial(text: &str) -> Result<String, CaError> {
    let t: String = text.trim().chars().filter(|c| *c != ':').collect();
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(usage(format!("serial '{}' is not hex", text.trim())));
    }
    let n = BigNum::from_hex_str(&t).and_then(|n| n.to_hex_str().map(|h| h.to_string()));
    n.map_err(|_| usage(format!("serial '{}' is not hex", text.trim())))
}

/// A CA certificate and the certificates above it as `ca-init` takes them: each a CA
/// (cA TRUE), each issued by the next (name and signature), the last a self-signed
/// root, and OpenSSL's chain verification from the CA to that root holding. A CA that
/// is not self-signed needs its chain.
pub fn check_chain(cert: &bridge::X509, chain: &[bridge::X509]) -> Result<(), CaError> {
    let rule = "issuer-chain";
    let name = |c: &bridge::X509| crate::console::escape(&issue::subject_line(c.subject_name()));
    let all: Vec<&bridge::X509> = std::iter::once(cert).chain(chain).collect();
    if let Some((i, c)) = all.iter().enumerate().find(|(_, c)| !bridge::is_ca(c)) {
        return Err(refuse(rule, format!("certificate {} of the file ({}) is not a CA certificate (no cA TRUE)", i + 1, name(c))));
    }
    for (i, c) in all.iter().enumerate() {
        if let Some(up) = all.get(i + 1) {
            let named = c.issuer_name().to_der().ok() == up.subject_name().to_der().ok();
            let signed = up.public_key().and_then(|k| c.verify(&k)).unwrap_or(false);
            bridge::clear_openssl_errors();
            if !named || !signed {
                return Err(refuse(
                    rule,
                    format!("certificate {} ({}) is not issued by certificate {} ({}): give the CA certificate first, then each issuer in order up to the root", i + 1, name(c), i + 2, name(up)),
                ));
            }
        }
    }
    let root = all.last().expect("at least the CA");
    let self_signed = root.issuer_name().to_der().ok() == root.subject_name().to_der().ok()
        && root.public_key().and_then(|k| root.verify(&k)).unwrap_or(false);
    bridge::clear_openssl_errors();
    if !self_signed {
        return Err(if chain.is_empty() {
            CaError::Input(format!(
                "the CA certificate ({}) is not self-signed and no chain follows it: give --cert a PEM file with the CA certificate followed by each certificate above it, up to the root; nothing was changed",
                name(cert)
            ))
        } else {
            refuse(rule, format!("the last certificate of the file ({}) is not a self-signed root", name(root)))
        });
    }
    let untrusted: Vec<bridge::X509> = chain.iter().take(chain.len().saturating_sub(1)).cloned().collect();
    bridge::verify_chain(cert, &untrusted, root).map_err(|e| refuse(rule, format!("OpenSSL does not verify the chain: {e}")))
}

/// The public key of the CA whose records `dir` holds (ca.db, read only, no lock:
/// nothing is changed), if it holds any.
pub fn recorded_public_key(dir: &Path) -> Option<bridge::PKey<bridge::Public>> {
    let path = dir.join(DB_FILE);
    if !path.is_file() {
        return None;
    }
    let row = Db::open_read_only(&path).ok()?.ca().ok()??;
    X509::from_der(&row.cert_der).ok()?.public_key().ok()
}
