//! Reading the log line by line: sequence numbers, the hash chain, checkpoint
//! signatures, and the records the committed entries make (kept compact: a digest of
//! each record's fields, its state and its revocation, under its serial packed inline).
//! The kinds a log holds by the million are read by entry.rs's strict reader, the rest
//! by serde.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use super::entry::{self, Entry, Fields, RecordEntry, SerialKey};
use super::verify::{fail, Failure};
use super::{checkpoint_message, line_hash, Digest};
use crate::ca::CrlReason;

/// A record as the entries make it.
pub struct Exp {
    /// The entry that recorded it, and the one that revoked it (else the same).
    pub seq: u64,
    pub rseq: u64,
    pub fields: Fields,
    /// Its index in [`entry::STATES`].
    pub state: u8,
    pub revoked_at: Option<i64>,
    pub reason: Option<CrlReason>,
}

/// What the committed entries make.
#[derive(Default)]
pub struct State {
    pub records: HashMap<SerialKey, Exp, entry::SerialHash>,
    /// The whole records of entries other than `record` lines (few), to name fields.
    pub wholes: HashMap<SerialKey, RecordEntry>,
    pub crls: BTreeMap<i64, (u64, [i64; 3], String)>,
    pub files: Vec<(u64, PathBuf, String)>,
    /// What an unfinished command at the end of the log is doing.
    pub open: Open,
}

/// What the command still open at the end of the log had announced: its serial (its
/// record may be pending or issued), its revocations (committed or not), its CRL
/// (recorded or not).
#[derive(Default)]
pub struct Open {
    pub serials: HashMap<SerialKey, u64>,
    pub revokes: HashMap<SerialKey, (u64, Option<i64>, Option<CrlReason>)>,
    pub crls: BTreeMap<i64, (u64, [i64; 3])>,
    /// Pending rows of ca.db no entry names yet.
    pub reserved: usize,
}

pub struct Chain {
    pub head_seq: u64,
    pub head: Digest,
    pub checkpoints: usize,
    pub last_checkpoint: Option<u64>,
    pub notes: Vec<String>,
}

/// The command being read: its begin and what it holds so far.
#[derive(Default)]
struct Group {
    begin: u64,
    at: Option<i64>,
    reason: Option<CrlReason>,
    issues: Vec<(u64, RecordEntry)>,
    crls: Vec<(u64, Entry)>,
    revokes: Vec<(u64, SerialKey)>,
}

fn state_of(s: &[u8], seq: u64) -> Result<u8, Failure> {
    entry::state_code(s).ok_or_else(|| Failure { entry: Some(seq), what: format!("unknown state '{}'", String::from_utf8_lossy(s)) })
}

/// A state's name.
pub fn state_name(code: u8) -> &'static str {
    entry::STATES[usize::from(code)]
}

fn reason_of(name: Option<&str>, seq: u64) -> Result<Option<CrlReason>, Failure> {
    match name {
        None => Ok(None),
        Some(n) => CrlReason::from_name(n).map(Some).ok_or_else(|| Failure { entry: Some(seq), what: format!("unknown reason '{n}'") }),
    }
}

/// The compact form of a whole record (from serde), and its key.
pub fn exp_of(r: &RecordEntry, seq: u64) -> Result<(SerialKey, Exp), Failure> {
    let json = entry::record_json(r);
    let bad = || Failure { entry: Some(seq), what: format!("serial '{}' is not a serial", r.serial) };
    let c = entry::compact(&json[1..]).ok_or_else(bad)?;
    let key = SerialKey::new(c.serial.as_bytes()).ok_or_else(bad)?;
    Ok((key, Exp::of(&c, seq)?))
}

impl Exp {
    /// A record as entry `seq` makes it, from its compact reading.
    fn of(c: &entry::Compact<'_>, seq: u64) -> Result<Exp, Failure> {
        Ok(Exp {
            seq,
            rseq: seq,
            fields: c.fields,
            state: state_of(c.state, seq)?,
            revoked_at: c.revoked_at,
            reason: reason_of(c.reason, seq)?,
        })
    }
}

/// A whole record into the table.
fn insert_whole(st: &mut State, r: RecordEntry, seq: u64) -> Result<(), Failure> {
    let (key, exp) = exp_of(&r, seq)?;
    if let Some(e) = st.records.insert(key, exp) {
        return fail(seq, format!("serial {} was recorded at entry {} already", r.serial, e.seq));
    }
    st.wholes.insert(key, r);
    Ok(())
}

/// How the log ended, when it did not end after a whole line.
pub const CUT: &str = "without a newline";

/// The walk's state between lines.
struct Walker<'w> {
    st: &'w mut State,
    group: Option<Group>,
    checkpoints: usize,
    last_checkpoint: Option<u64>,
    /// The hash of the line before.
    prev: Digest,
    check_start: &'w dyn Fn(&Entry) -> Result<(), Failure>,
    check_sig: &'w dyn Fn(&[u8], &[u8]) -> bool,
}

/// Walks the log's lines from `start`. The outer error: the log cannot be read.
pub fn walk<R: std::io::Read>(
    lines: &mut entry::Lines<R>,
    (start_name, start): (&str, Digest),
    check_start: &dyn Fn(&Entry) -> Result<(), Failure>,
    check_sig: &dyn Fn(&[u8], &[u8]) -> bool,
    st: &mut State,
) -> anyhow::Result<Result<Chain, Failure>> {
    let mut w = Walker { st, group: None, checkpoints: 0, last_checkpoint: None, prev: start, check_start, check_sig };
    let mut prev_hex = [0u8; 64];
    let mut n = 0u64;
    loop {
        let l = match lines.next_line()? {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(cut) => return Ok(fail(None, format!("audit.log ends in {cut} bytes {CUT} (a write cut short; the next command on the directory removes them)"))),
        };
        let want = n + 1;
        let Some(h) = entry::head(l) else {
            return Ok(fail(want, format!("line {want} is not a log entry (edited)")));
        };
        if h.seq != want {
            // Out of place: is the next line the one expected?
            let found = h.seq;
            let next = match lines.next_line()? {
                Ok(Some(l)) => entry::head(l).map(|h| h.seq),
                _ => None,
            };
            return Ok(if next == Some(want) {
                fail(want, format!("entries {want} and {found} are in reverse order (line {want} holds entry {found})"))
            } else if found > want {
                fail(want, format!("missing: line {want} holds entry {found} (a line was deleted)"))
            } else {
                fail(want, format!("line {want} holds entry {found} again (a line was repeated or moved)"))
            });
        }
        hex::encode_to_slice(w.prev, &mut prev_hex).expect("64 hex digits");
        if h.prev != prev_hex {
            return Ok(if want == 1 {
                fail(want, format!("it does not chain to {start_name} (its prev is not that file's SHA-256)"))
            } else {
                fail(want - 1, format!("its hash is not the one entry {want} carries (entry {} or {want} was edited)", want - 1))
            });
        }
        if let Err(f) = w.entry(l, &h, want) {
            return Ok(Err(f));
        }
        w.prev = line_hash(l);
        n = want;
    }
    let Walker { st, group, checkpoints, last_checkpoint, prev, .. } = w;
    let mut notes = Vec::new();
    if let Some(g) = group {
        // A command still running, or killed: ca.db may or may not hold its result
        // yet, and either is accepted until the next command closes the group.
        notes.push(format!("entries {} to {n} belong to a command that has not finished (the next command on the directory closes it)", g.begin));
        for (seq, r) in g.issues {
            let (key, _) = exp_of(&r, seq)?;
            st.open.serials.insert(key, seq);
        }
        for (seq, key) in g.revokes {
            st.open.revokes.insert(key, (seq, g.at, g.reason));
        }
        for (seq, c) in g.crls {
            if let Entry::Crl { number, this_update, next_update, entries } = c {
                st.open.crls.insert(number, (seq, [this_update, next_update, entries]));
            }
        }
    }
    match last_checkpoint {
        Some(c) if c < n => notes.push(format!("entries {} to {n} come after the last checkpoint: no signature covers them yet", c + 1)),
        None => notes.push("no checkpoint yet: no command has used the CA key since the log began".into()),
        _ => {}
    }
    Ok(Ok(Chain { head_seq: n, head: prev, checkpoints, last_checkpoint, notes }))
}

impl Walker<'_> {
    /// One entry whose place in the chain holds.
    fn entry(&mut self, l: &[u8], h: &entry::Head<'_>, want: u64) -> Result<(), Failure> {
        let edited = || Failure { entry: Some(want), what: "not a valid entry (edited)".into() };
        match (h.kind, &mut self.group) {
            // The kinds a log holds by the million, read strictly without serde.
            (b"revoke", Some(g)) => {
                let serial = entry::revoke_serial(h.rest).ok_or_else(edited)?;
                g.revokes.push((want, SerialKey::new(serial.as_bytes()).ok_or_else(edited)?));
            }
            (b"record", Some(g)) => {
                let c = entry::compact(&h.rest[1..]).ok_or_else(edited)?;
                let exp = Exp::of(&c, want)?;
                // Records come only in adoption and ca-init groups, which are written
                // whole (a file renamed into place): straight into the table.
                if g.begin > 2 {
                    return fail(want, "a record entry after the log began");
                }
                if self.st.records.insert(SerialKey::new(c.serial.as_bytes()).ok_or_else(edited)?, exp).is_some() {
                    return fail(want, format!("serial {} is recorded a second time", c.serial));
                }
            }
            (b"revoke" | b"record", None) => return fail(want, "an entry outside a command's group"),
            _ => {
                let entry: Entry = serde_json::from_slice(l).map_err(|_| edited())?;
                // Exactly as hsm-demo writes it: a JSON variant of the same value (an
                // escape, a base64 character whose low bits the decoder drops) is an
                // edit too, which matters on the last line, which nothing after it holds.
                if entry::line(want, &self.prev, &entry) != l {
                    return Err(edited());
                }
                if want == 1 {
                    (self.check_start)(&entry)?;
                }
                match entry {
                    Entry::Start { .. } if want == 1 => {}
                    Entry::Start { .. } => return fail(want, "a second start line"),
                    Entry::Begin { inputs, .. } => {
                        if let Some(g) = &self.group {
                            return fail(want, format!("begins a command while the one begun at entry {} is not closed (a line was removed)", g.begin));
                        }
                        let reason = inputs.get("reason").and_then(Value::as_str).filter(|r| *r != "unspecified");
                        self.group = Some(Group { begin: want, at: inputs.get("at").and_then(Value::as_i64), reason: reason_of(reason, want)?, ..Group::default() });
                    }
                    Entry::Checkpoint { signature } => {
                        if let Some(g) = &self.group {
                            return fail(want, format!("a checkpoint inside the command begun at entry {}", g.begin));
                        }
                        let sig = crate::bridge::base64_decode(&signature).unwrap_or_default();
                        // Base64 as hsm-demo writes it (a decoder drops the low bits of a
                        // last character, so another text could decode the same).
                        if crate::bridge::base64_encode(&sig) != signature {
                            return Err(edited());
                        }
                        if !(self.check_sig)(checkpoint_message(want - 1, &self.prev).as_bytes(), &sig) {
                            return fail(want, "the checkpoint's signature does not verify under the CA certificate");
                        }
                        self.checkpoints += 1;
                        self.last_checkpoint = Some(want);
                    }
                    Entry::Commit { begin, outputs, .. } => {
                        let Some(g) = self.group.take().filter(|g| g.begin == begin) else {
                            return fail(want, format!("commits entry {begin}, which does not begin the open command"));
                        };
                        apply(self.st, g, want, &outputs)?;
                    }
                    Entry::Abandoned { begin, records, .. } => {
                        let open = match (begin, self.group.take()) {
                            (None, g) => {
                                self.group = g;
                                Vec::new()
                            }
                            (Some(b), Some(g)) if g.begin == b => g.issues,
                            (Some(b), _) => return fail(want, format!("abandons entry {b}, which does not begin the open command")),
                        };
                        if let Some((s, r)) = open.iter().find(|(_, r)| !records.iter().any(|a| a.serial == r.serial)) {
                            return fail(want, format!("it leaves serial {} of entry {s} unaccounted for", r.serial));
                        }
                        for r in records {
                            if r.state != "abandoned" {
                                return fail(want, format!("serial {} is {}, not abandoned", r.serial, r.state));
                            }
                            insert_whole(self.st, r, want)?;
                        }
                    }
                    other => match &mut self.group {
                        Some(g) => match other {
                            Entry::Issue { serial, subject, profile, not_before, not_after, .. } => g.issues.push((
                                want,
                                RecordEntry {
                                    serial,
                                    state: "pending".into(),
                                    subject,
                                    profile: Some(profile),
                                    not_before: Some(not_before),
                                    not_after,
                                    created_at: not_before,
                                    cert_sha256: None,
                                    revoked_at: None,
                                    reason: None,
                                },
                            )),
                            c => g.crls.push((want, c)),
                        },
                        None => return fail(want, "an entry outside a command's group"),
                    },
                }
            }
        }
        Ok(())
    }
}

/// A committed group's effect.
fn apply(st: &mut State, g: Group, seq: u64, outputs: &serde_json::Map<String, Value>) -> Result<(), Failure> {
    let text = |k: &str| outputs.get(k).and_then(Value::as_str).map(String::from);
    for (s, mut r) in g.issues {
        // An issue entry: committed with its certificate.
        if text("serial").as_deref() != Some(r.serial.as_str()) {
            return fail(seq, format!("it does not commit serial {} of entry {s}", r.serial));
        }
        r.state = "issued".into();
        r.cert_sha256 = text("cert_sha256");
        insert_whole(st, r, s)?;
    }
    for (s, serial) in g.revokes {
        let Some(e) = st.records.get_mut(&serial) else {
            return fail(s, format!("revokes serial {serial}, which was never recorded"));
        };
        if e.revoked_at.is_some() || !matches!(state_name(e.state), "issued" | "imported") {
            return fail(s, format!("revokes serial {serial}, which is {} or revoked already", state_name(e.state)));
        }
        e.revoked_at = g.at;
        e.reason = g.reason;
        e.rseq = s;
    }
    for (s, c) in g.crls {
        match c {
            Entry::CrlRecord { number, this_update, next_update, entries, crl_sha256 } => {
                st.crls.insert(number, (s, [this_update, next_update, entries], crl_sha256));
            }
            Entry::Crl { number, this_update, next_update, entries } => {
                st.crls.insert(number, (s, [this_update, next_update, entries], text("crl_sha256").unwrap_or_default()));
            }
            _ => return fail(s, "an entry outside a command's group"),
        }
    }
    if let (Some(path), Some(sha)) = (text("out"), text("out_sha256")) {
        st.files.push((seq, PathBuf::from(path), sha));
    }
    Ok(())
}
