//! The log's lines: the entries as serde writes them, and the strict hand-written
//! reading of the two kinds a log holds by the million (`record`, `revoke`), which
//! accepts exactly what serde writes and nothing else.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Digest;

/// The token a command used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenId {
    pub label: String,
    pub serial: String,
}

/// An entry (the JSON after `seq` and `prev`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Entry {
    /// The first line: the CA it is the log of, and what its `prev` is the digest of.
    Start { time: String, chained_to: String, ca_cert_sha256: String, chain_sha256: String, key: String },
    /// A command starts: who, with what.
    Begin {
        time: String,
        command: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<TokenId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        inputs: Map<String, Value>,
    },
    /// A certificate record as it stood when the log began (adoption) or was imported.
    Record(RecordEntry),
    /// A CRL record as it stood when the log began.
    CrlRecord { number: i64, this_update: i64, next_update: i64, entries: i64, crl_sha256: String },
    /// A serial reserved for an issuance, before the token signs.
    Issue {
        serial: String,
        subject: String,
        profile: String,
        not_before: i64,
        not_after: i64,
        /// The request's (a cross-certificate may have none: begin's inputs hold
        /// the cross-signed certificate's).
        csr_sha256: Option<String>,
    },
    /// A serial to be revoked (time and reason in the group's `begin`).
    Revoke { serial: String },
    /// A CRL about to be signed, its number taken.
    Crl { number: i64, this_update: i64, next_update: i64, entries: i64 },
    /// The group that began at `begin` took effect.
    Commit { begin: u64, time: String, outputs: Map<String, Value> },
    /// The group that began at `begin` (None: a serial reserved before any entry was
    /// written) did not take effect; `records` are the serials it had reserved, as
    /// ca.db now holds them (abandoned, never used again).
    Abandoned {
        #[serde(default)]
        begin: Option<u64>,
        time: String,
        why: String,
        #[serde(default)]
        records: Vec<RecordEntry>,
    },
    /// The token's signature over "SEQ HASH\n" of the entry before it.
    Checkpoint { signature: String },
}

/// A certificate record, as a `record` entry holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordEntry {
    pub serial: String,
    pub state: String,
    pub subject: String,
    pub profile: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: i64,
    pub created_at: i64,
    pub cert_sha256: Option<String>,
    pub revoked_at: Option<i64>,
    pub reason: Option<String>,
}

impl Entry {
    /// Entries inside a group that stay pending until its `commit`.
    pub fn in_group(&self) -> bool {
        matches!(self, Entry::Begin { .. } | Entry::Record(_) | Entry::CrlRecord { .. } | Entry::Issue { .. } | Entry::Revoke { .. } | Entry::Crl { .. })
    }
}

/// One log line: `{"seq":N,"prev":"HEX",` then the entry's fields.
pub fn line(seq: u64, prev: &Digest, entry: &Entry) -> Vec<u8> {
    let body = serde_json::to_string(entry).expect("entries serialize");
    format!("{{\"seq\":{seq},\"prev\":\"{}\",{}", hex::encode(prev), &body[1..]).into_bytes()
}

/// The parts every line starts with: `{"seq":N,"prev":"HEX64","type":"KIND"`, and what
/// follows (`}` or `,` and the entry's other fields, then `}`).
pub struct Head<'a> {
    pub seq: u64,
    pub prev: &'a [u8],
    pub kind: &'a [u8],
    pub rest: &'a [u8],
}

/// Reads a line's head; None if the line does not start as hsm-demo writes lines.
pub fn head(l: &[u8]) -> Option<Head<'_>> {
    let l = l.strip_prefix(b"{\"seq\":")?;
    let digits = l.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || (l[0] == b'0') {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&l[..digits]).ok()?.parse().ok()?;
    let l = l[digits..].strip_prefix(b",\"prev\":\"")?;
    let (prev, l) = (l.get(..64)?, l.get(64..)?);
    let l = l.strip_prefix(b"\",\"type\":\"")?;
    let end = l.iter().position(|c| *c == b'"')?;
    let (kind, rest) = (&l[..end], &l[end + 1..]);
    if !rest.ends_with(b"}") {
        return None;
    }
    Some(Head { seq, prev, kind, rest })
}

/// A `revoke` line's serial: the rest must be exactly `,"serial":"HEX"}`.
pub fn revoke_serial(rest: &[u8]) -> Option<&str> {
    let s = rest.strip_prefix(b",\"serial\":\"")?.strip_suffix(b"\"}")?;
    is_serial(s).then(|| std::str::from_utf8(s).ok()).flatten()
}

/// The states a record can be in, as the records write them.
pub const STATES: [&str; 4] = ["pending", "issued", "abandoned", "imported"];

/// A state's index in [`STATES`].
pub fn state_code(s: &[u8]) -> Option<u8> {
    STATES.iter().position(|x| x.as_bytes() == s).map(|i| i as u8)
}

/// A hasher for serials (hex text) in the verifier's tables: a multiply-rotate over
/// 8-byte words from a per-process random seed, several times cheaper than SipHash
/// for a million keys.
#[derive(Clone, Copy)]
pub struct SerialHasher(u64);

impl std::hash::Hasher for SerialHasher {
    fn finish(&self) -> u64 {
        // splitmix64's finalizer: every output bit depends on every input bit.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

/// Builds [`SerialHasher`]s from one random seed.
#[derive(Clone, Copy)]
pub struct SerialHash(u64);

impl Default for SerialHash {
    fn default() -> Self {
        use std::hash::BuildHasher as _;
        SerialHash(std::collections::hash_map::RandomState::new().hash_one(0u8) | 1)
    }
}

impl std::hash::BuildHasher for SerialHash {
    type Hasher = SerialHasher;
    fn build_hasher(&self) -> SerialHasher {
        SerialHasher(self.0)
    }
}

/// A serial as a table key: its hex digit count, then the digits packed two to a byte
/// (held inline: a million keys compared without a pointer each).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SerialKey([u8; 24]);

impl SerialKey {
    pub fn new(hex: &[u8]) -> Option<SerialKey> {
        if !is_serial(hex) {
            return None;
        }
        let mut k = [0u8; 24];
        k[0] = hex.len() as u8;
        for (i, c) in hex.iter().enumerate() {
            let v = (*c as char).to_digit(16)? as u8;
            k[1 + i / 2] |= if i % 2 == 0 { v << 4 } else { v };
        }
        Some(SerialKey(k))
    }
}

impl std::fmt::Display for SerialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for i in 0..usize::from(self.0[0]) {
            let b = self.0[1 + i / 2];
            let v = if i % 2 == 0 { b >> 4 } else { b & 0xf };
            write!(f, "{v:X}")?;
        }
        Ok(())
    }
}

/// A record's fields up to its revocation, as the verifier compares them: the first
/// 16 bytes of their SHA-256.
pub type Fields = [u8; 16];

fn is_serial(s: &[u8]) -> bool {
    !s.is_empty() && s.len() <= 42 && s.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
}

/// A record as the verifier keeps it: its fields up to the revocation as a digest, its
/// state, and its revocation.
pub struct Compact<'a> {
    pub serial: &'a str,
    pub state: &'a [u8],
    /// The record's JSON fields from `"serial"` up to `,"revoked_at":`, but the state,
    /// digested.
    pub fields: Fields,
    pub revoked_at: Option<i64>,
    pub reason: Option<&'a str>,
}

const REVOKED_AT: &[u8] = b",\"revoked_at\":";

/// A record's JSON object as serde writes [`RecordEntry`], without its opening brace
/// (`"serial":...}`), read strictly into its compact form.
pub fn compact(body: &[u8]) -> Option<Compact<'_>> {
    let rest = body.strip_prefix(b"\"serial\":\"")?;
    let end = rest.iter().position(|c| *c == b'"')?;
    let serial = &rest[..end];
    if !is_serial(serial) {
        return None;
    }
    let after = rest[end + 1..].strip_prefix(b",\"state\":\"")?;
    let state = &after[..after.iter().position(|c| *c == b'"')?];
    let cut = memchr::memmem::rfind(body, REVOKED_AT)?;
    // The digest leaves the state out (compared on its own): `"serial":"S","state":"`,
    // then from the state's closing quote to the revocation.
    let state_at = body.len() - after.len();
    let state_end = state_at + state.len();
    if state_end > cut {
        return None;
    }
    let tail = body[cut + REVOKED_AT.len()..].strip_suffix(b"}")?;
    let (at, reason) = {
        let comma = memchr::memmem::find(tail, b",\"reason\":")?;
        (&tail[..comma], &tail[comma + 10..])
    };
    let revoked_at = match at {
        b"null" => None,
        n => Some(std::str::from_utf8(n).ok()?.parse::<i64>().ok()?),
    };
    let reason = match reason {
        b"null" => None,
        r => {
            let name = r.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
            if !name.iter().all(u8::is_ascii_alphabetic) {
                return None;
            }
            Some(std::str::from_utf8(name).ok()?)
        }
    };
    Some(Compact {
        serial: std::str::from_utf8(serial).ok()?,
        state,
        fields: {
            let mut h = openssl::sha::Sha256::new();
            h.update(&body[..state_at]);
            h.update(&body[state_end..cut]);
            h.finish()[..16].try_into().expect("16 of 32 bytes")
        },
        revoked_at,
        reason,
    })
}

/// A record's JSON object as serde writes it.
pub fn record_json(r: &RecordEntry) -> Vec<u8> {
    serde_json::to_vec(r).expect("records serialize")
}

/// The log's lines, read in chunks into one buffer (the log may be hundreds of MB):
/// each line is handed out without its newline, borrowed until the next call.
pub struct Lines<R> {
    source: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

const CHUNK: usize = 4 << 20;

impl<R: std::io::Read> Lines<R> {
    pub fn new(source: R) -> Self {
        Lines { source, buf: vec![0; CHUNK], start: 0, end: 0, eof: false }
    }

    /// The next complete line; at the end, Err(n) if n bytes follow the last newline.
    pub fn next_line(&mut self) -> std::io::Result<Result<Option<&[u8]>, usize>> {
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line = self.start..self.start + p;
                self.start += p + 1;
                return Ok(Ok(Some(&self.buf[line])));
            }
            if self.eof {
                let left = self.end - self.start;
                return Ok(if left == 0 { Ok(None) } else { Err(left) });
            }
            // Keep the partial line, make room (a line longer than the buffer grows it).
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.source.read(&mut self.buf[self.end..])?;
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }
}
