//! The CA directory's operations log, `audit.log`: one JSON line per entry, each
//! carrying its sequence number and the SHA-256 of the line before it (the first, the
//! SHA-256 of the ceremony's transcript.txt, or of the CA certificate for a directory
//! made by `ca-init`). Every command on the directory writes its entries as a group,
//! `begin` ... `commit`, and a command that used the CA key ends with a `checkpoint`:
//! the sequence number and hash of the entry before it, signed in the token by that
//! key (one signature per command). `verify-audit` checks it all offline (verify.rs).
//!
//! Durability follows ca.db's: the entries that say what is about to happen are on disk
//! (fdatasync) before the token signs or the records change, and the `commit` after.
//! A command killed midway leaves an open group (or none, when it died before its
//! first entry); the next command on the directory closes it from what ca.db shows
//! (recover.rs): `commit` if the records hold the result, else `abandoned`.

mod entry;
mod recover;
mod rows;
mod verify;
mod walk;

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Map, Value};

use crate::hsm::{Hsm, SigningKey};

use super::db::{CaRow, Db};
use super::{db_err, CaError};

pub use entry::{Entry, RecordEntry, TokenId};
pub use verify::verify;
use entry::line;

pub const LOG_FILE: &str = "audit.log";

pub type Digest = [u8; 32];

/// The SHA-256 of a line (its bytes without the newline). OpenSSL's SHA256_Init/
/// Update/Final directly: its one-shot SHA256() fetches the digest anew on each call
/// in OpenSSL 3, which cost more than the hashing over a million short lines.
pub fn line_hash(line: &[u8]) -> Digest {
    let mut h = openssl::sha::Sha256::new();
    h.update(line);
    h.finish()
}

/// Who runs a command: the token and key, and the operator's note.
pub struct Who {
    pub token: Option<TokenId>,
    pub key: Option<String>,
    pub note: Option<String>,
}

impl Who {
    pub fn of(hsm: &Hsm, key_uri: &str, note: Option<&str>) -> Who {
        let t = hsm.token();
        Who {
            token: Some(TokenId { label: t.label.clone(), serial: t.serial.clone() }),
            key: Some(key_uri.to_string()),
            note: note.map(String::from),
        }
    }

    pub fn offline(note: Option<&str>) -> Who {
        Who { token: None, key: None, note: note.map(String::from) }
    }
}

/// An `--note` as an entry takes it: one line of printable text, at most 1,000 characters.
pub fn check_note(note: &str) -> Result<(), CaError> {
    if note.chars().count() > 1000 || note.chars().any(char::is_control) {
        return Err(CaError::Input("--note: one line of printable text, at most 1000 characters".into()));
    }
    Ok(())
}

/// Records in `outputs` the file a command writes after its commit: its absolute path
/// and the SHA-256 of the bytes it will hold.
pub fn record_output(outputs: &mut Map<String, Value>, path: &Path, bytes: &[u8]) {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    outputs.insert("out".into(), abs.display().to_string().into());
    outputs.insert("out_sha256".into(), hex_digest(bytes).into());
}

/// The SHA-256 of each file (share files, wrapped keys), for an entry's inputs or
/// outputs: `[{"file": ..., "sha256": ...}]`.
pub fn files_sha256(paths: &[PathBuf]) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for p in paths {
        let bytes = crate::output::read_regular(p).with_context(|| format!("read {}", p.display()))?;
        out.push(serde_json::json!({ "file": p.display().to_string(), "sha256": hex_digest(&bytes) }));
    }
    Ok(Value::Array(out))
}

pub fn hex_digest(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha256(bytes))
}

/// The log, open for appending under the CA directory's lock.
pub struct Log {
    path: PathBuf,
    file: File,
    next_seq: u64,
    prev: Digest,
    buf: Vec<u8>,
    /// The `begin` of this command's group, until it is committed.
    open: Option<u64>,
}

/// What the first line chains to: the ceremony's transcript, or the CA certificate.
fn chain_start(dir: &Path, row: &CaRow) -> anyhow::Result<(String, Digest)> {
    match crate::output::read_regular(&dir.join("transcript.txt")) {
        Ok(t) => Ok(("transcript.txt".into(), openssl::sha::sha256(&t))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(("the CA certificate".into(), openssl::sha::sha256(&row.cert_der))),
        Err(e) => Err(e).with_context(|| format!("read {}", dir.join("transcript.txt").display())),
    }
}

impl Log {
    /// Starts the log of a CA directory whose records are in place: the `start` line,
    /// then a group `command` recording every certificate and CRL `db` holds (an
    /// adoption: nothing older is invented). Written under a temporary name and renamed
    /// in, so a log is whole or absent.
    pub fn create(dir: &Path, db: &Db, row: &CaRow, command: &str, inputs: Map<String, Value>, note: Option<&str>) -> anyhow::Result<()> {
        let (chained_to, first_prev) = chain_start(dir, row)?;
        let tmp = dir.join(format!(".{LOG_FILE}.{}", std::process::id()));
        let file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)
        }
        .with_context(|| format!("create {}", tmp.display()))?;
        let mut log = Log { path: tmp.clone(), file, next_seq: 1, prev: first_prev, buf: Vec::new(), open: None };
        let made = (|| -> anyhow::Result<()> {
            log.push(&Entry::Start {
                time: crate::clock::utc_now(),
                chained_to,
                ca_cert_sha256: hex_digest(&row.cert_der),
                chain_sha256: hex_digest(row.chain_pem.as_bytes()),
                key: row.key_uri.clone(),
            });
            log.begin(command, &Who::offline(note), inputs);
            let mut n = 0usize;
            db.for_each_row(|r| {
                log.push(&Entry::Record(r));
                n += 1;
            })
            .map_err(db_err("read the records"))?;
            for c in db.crls().map_err(db_err("read the CRL records"))? {
                log.push(&c);
            }
            let mut outputs = Map::new();
            outputs.insert("records".into(), n.into());
            log.commit(outputs)?;
            log.file.sync_all()?;
            crate::output::rename_no_replace(&tmp, &dir.join(LOG_FILE)).context("put audit.log in place")?;
            crate::output::sync_dir(dir).context("sync the CA directory")?;
            Ok(())
        })();
        let _ = std::fs::remove_file(&tmp);
        made
    }

    /// Opens the log of `dir` (starting it by adoption when there is none), repairs a
    /// line cut by a kill, and closes a group a killed command left open; `abandoned`
    /// are the serials ca.db holds pending, which it marks abandoned after this. Returns
    /// what was repaired, for stderr.
    pub fn open(dir: &Path, db: &mut Db, row: &CaRow, abandoned: &[String]) -> anyhow::Result<(Log, Vec<String>)> {
        let path = dir.join(LOG_FILE);
        if !path.exists() {
            Log::create(dir, db, row, "adopt", Map::new(), None)?;
        }
        let mut file = std::fs::OpenOptions::new().read(true).append(true).open(&path).with_context(|| format!("open {}", path.display()))?;
        let mut notes = Vec::new();
        let (last, cut) = last_line(&mut file).with_context(|| format!("read {}", path.display()))?;
        if cut > 0 {
            let len = file.metadata()?.len();
            file.set_len(len - cut as u64).context("remove the cut line from audit.log")?;
            file.sync_data()?;
            notes.push(format!("audit.log ended in a line cut short by an interrupted write ({cut} bytes); it was removed"));
        }
        let head = entry::head(&last).ok_or_else(|| CaError::Input(format!("{}: its last line is not a log entry; run hsm-demo verify-audit {}", path.display(), dir.display())))?;
        let mut log = Log { path, file, next_seq: head.seq + 1, prev: line_hash(&last), buf: Vec::new(), open: None };
        let last_entry = serde_json::from_slice::<Entry>(&last).ok();
        let open = last_entry.as_ref().is_some_and(Entry::in_group);
        let mut left: Vec<String> = abandoned.to_vec();
        // A command killed after it logged these abandoned and before ca.db said so.
        if let Some(Entry::Abandoned { records, .. }) = &last_entry {
            left.retain(|s| !records.iter().any(|r| &r.serial == s));
        }
        if open {
            notes.extend(recover::close_open_group(&mut log, db, &mut left)?);
        }
        if !left.is_empty() {
            let records = recover::records_of(db, &left)?;
            log.push(&Entry::Abandoned {
                begin: None,
                time: crate::clock::utc_now(),
                why: "reserved by an issuance killed before it wrote its entry".into(),
                records,
            });
            log.flush()?;
        }
        Ok((log, notes))
    }

    /// Adds an entry to what the next `flush` writes.
    pub fn push(&mut self, entry: &Entry) {
        let l = line(self.next_seq, &self.prev, entry);
        self.push_line(l);
    }

    fn push_line(&mut self, l: Vec<u8>) {
        self.prev = line_hash(&l);
        self.next_seq += 1;
        self.buf.extend_from_slice(&l);
        self.buf.push(b'\n');
    }

    /// A `revoke` entry, written without serde (a revocation may hold a million).
    pub fn push_revoke(&mut self, serial: &str) {
        let l = format!("{{\"seq\":{},\"prev\":\"{}\",\"type\":\"revoke\",\"serial\":\"{serial}\"}}", self.next_seq, hex::encode(self.prev));
        self.push_line(l.into_bytes());
    }

    /// Writes what was pushed and waits for it to reach the disk (fdatasync).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf).with_context(|| format!("append to {}", self.path.display()))?;
        self.file.sync_data().with_context(|| format!("sync {}", self.path.display()))?;
        self.buf.clear();
        Ok(())
    }

    /// Starts this command's group (written with the next flush).
    pub fn begin(&mut self, command: &str, who: &Who, inputs: Map<String, Value>) {
        self.open = Some(self.next_seq);
        self.push(&Entry::Begin {
            time: crate::clock::utc_now(),
            command: command.into(),
            token: who.token.clone(),
            key: who.key.clone(),
            note: who.note.clone(),
            inputs,
        });
    }

    /// Commits this command's group and writes it to disk.
    pub fn commit(&mut self, outputs: Map<String, Value>) -> anyhow::Result<()> {
        let begin = self.open.take().expect("a group was begun");
        self.push(&Entry::Commit { begin, time: crate::clock::utc_now(), outputs });
        self.flush()
    }

    /// Commits this command's group without writing it yet: the checkpoint that must
    /// follow writes both with one fdatasync (a kill before leaves the group open, and
    /// the next command commits it from ca.db).
    pub fn commit_before_checkpoint(&mut self, outputs: Map<String, Value>) {
        let begin = self.open.take().expect("a group was begun");
        self.push(&Entry::Commit { begin, time: crate::clock::utc_now(), outputs });
    }

    /// Closes this command's group as abandoned (a failure after its entries were
    /// written), with the records of the serials it had reserved.
    pub fn abandon(&mut self, why: &str, records: Vec<RecordEntry>) -> anyhow::Result<()> {
        let begin = self.open.take();
        self.push(&Entry::Abandoned { begin, time: crate::clock::utc_now(), why: why.into(), records });
        self.flush()
    }

    /// The command's last line: the token's signature over the sequence number and hash
    /// of the entry before it, by the CA key.
    pub fn checkpoint(&mut self, key: &SigningKey<'_>) -> anyhow::Result<()> {
        let message = checkpoint_message(self.next_seq - 1, &self.prev);
        let signed = key.scheme(None, None).map_err(anyhow::Error::from).and_then(|scheme| key.sign(scheme, |sink| Ok(sink(message.as_bytes())?)));
        match signed {
            Ok(sig) => self.push(&Entry::Checkpoint { signature: crate::bridge::base64_encode(&sig) }),
            Err(e) => {
                // What was committed is written all the same; no checkpoint this time.
                self.flush()?;
                return Err(e.context("the log's checkpoint was not signed (the command's entries are written)"));
            }
        }
        self.flush()
    }

}

impl Drop for Log {
    /// Entries pushed and not yet written (a command that failed before its
    /// checkpoint) are written all the same.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// What a checkpoint signs: the previous entry's sequence number and hash, a newline.
pub fn checkpoint_message(seq: u64, hash: &Digest) -> String {
    format!("{seq} {}\n", hex::encode(hash))
}

/// The last complete line of the log (without its newline), and how many bytes follow
/// it without a newline (a write cut by a kill).
fn last_line(file: &mut File) -> std::io::Result<(Vec<u8>, usize)> {
    let len = file.metadata()?.len();
    let mut window = 64 * 1024u64;
    loop {
        let from = len.saturating_sub(window);
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(from))?;
        std::io::Read::by_ref(file).take(len - from).read_to_end(&mut tail)?;
        let end = tail.iter().rposition(|b| *b == b'\n');
        let cut = end.map_or(tail.len(), |e| tail.len() - e - 1);
        if let Some(e) = end {
            if let Some(s) = tail[..e].iter().rposition(|b| *b == b'\n') {
                return Ok((tail[s + 1..e].to_vec(), cut));
            }
            if from == 0 {
                return Ok((tail[..e].to_vec(), cut));
            }
        } else if from == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "no complete line"));
        }
        window *= 4;
    }
}
