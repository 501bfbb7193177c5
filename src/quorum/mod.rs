//! The m-of-n quorums: Shamir secret sharing (blahaj, GF(256)) of the token's SO PIN
//! or user PIN, share files with check values, and recombination that names a bad
//! share (files.rs).

mod files;
mod locked;
pub mod retired;

use blahaj::{Share, Sharks};
use crate::bridge::Sha256;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use files::{check_file, check_set, combine};
pub use locked::{lock, Locked};

/// The share file format identifier.
pub const FORMAT: &str = "hsm-demo-quorum-share/1";

/// `M/N`: M shares of N open the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    pub threshold: u8,
    pub shares: u8,
}

/// A quorum that is not `M/N` with 2 <= M <= N <= 10.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QuorumSpecError(String);

impl std::str::FromStr for Quorum {
    type Err = QuorumSpecError;

    fn from_str(s: &str) -> Result<Self, QuorumSpecError> {
        let bad = QuorumSpecError;
        let (m, n) = s
            .split_once('/')
            .ok_or_else(|| bad(format!("quorum '{s}' is not M/N (e.g. 3/5)")))?;
        let m: u8 = m
            .trim()
            .parse()
            .map_err(|_| bad(format!("quorum '{s}': M is not a number")))?;
        let n: u8 = n
            .trim()
            .parse()
            .map_err(|_| bad(format!("quorum '{s}': N is not a number")))?;
        if m < 2 {
            return Err(bad(format!(
                "quorum '{s}': M must be at least 2 (one custodian alone is no quorum)"
            )));
        }
        if n < m || n > 10 {
            return Err(bad(format!("quorum '{s}': N must be between M and 10")));
        }
        Ok(Quorum {
            threshold: m,
            shares: n,
        })
    }
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-of-{}", self.threshold, self.shares)
    }
}

/// What binds a share set to one ceremony and one token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Binding {
    pub ceremony_id: String,
    pub token_label: String,
    pub token_serial: String,
    pub root_cert_sha256: String,
}

/// One custodian's share file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareFile {
    pub format: String,
    pub purpose: String,
    #[serde(flatten)]
    pub binding: Binding,
    pub index: u8,
    pub threshold: u8,
    pub shares: u8,
    /// The share bytes (x, then y), hex.
    pub share: String,
    /// SHA-256 check value of every share of the set, in index order: a share that
    /// does not hash to its entry is corrupt or altered.
    pub share_checks: Vec<String>,
    /// SHA-256 over the ceremony id and the secret: proves a recombination right
    /// before the token is asked (a failed SO login counts towards a lockout).
    pub secret_check: String,
    /// The share set's id: derived from the set's check values (which come from the
    /// dealer's random polynomial), so it is random per set and cannot be altered
    /// without the file failing its check. Files made before set ids were written
    /// lack it; their id is computed the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_id: Option<String>,
}

impl Drop for ShareFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.share);
    }
}

impl ShareFile {
    /// The id of the set this share belongs to (16 hex digits).
    pub fn set_id(&self) -> String {
        set_id(&self.share_checks)
    }
}

/// 64 bits of SHA-256 over a set's check values: one id per dealt set.
fn set_id(checks: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(b"hsm-demo share set id v1\0");
    for c in checks {
        h.update(c.as_bytes());
        h.update(&[0]);
    }
    hex::encode(&h.finish()[..8])
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("share file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("share file {path} (share {index}) is corrupted or altered: it does not match its check value")]
    BadShare { path: String, index: u8 },
    #[error(
        "share files disagree on the share set; {path} (set {odd_set}) differs from the others (set {set}): it was altered or belongs to another set"
    )]
    Inconsistent { path: String, odd_set: String, set: String },
    #[error("share files disagree and there is no majority to tell which was altered ({0})")]
    Undecidable(String),
    #[error("share {index} was given twice ({a} and {b})")]
    Duplicate { index: u8, a: String, b: String },
    #[error("{given} distinct share(s) given; this quorum needs {threshold} of {shares}")]
    TooFew {
        given: usize,
        threshold: u8,
        shares: u8,
    },
    #[error("the shares combine to a value that fails the quorum's check; nothing was sent to the token")]
    WrongSecret,
    #[error("share file {path} belongs to share set {set}, replaced on {when} by set {new} (re-deal record {record}); nothing was sent to the token")]
    Retired {
        path: String,
        set: String,
        new: String,
        when: String,
        record: String,
    },
    #[error("share file {path} holds a share of the {is}, not of the {want}")]
    WrongPurpose {
        path: String,
        is: &'static str,
        want: &'static str,
    },
}

/// What a share set protects. The check values are domain-separated by purpose, so a
/// set relabelled as the other kind fails its check before any token sees its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The token's SO PIN (the ceremony's `--quorum`).
    SoPin,
    /// The token's user PIN, needed for every use of the root key
    /// (`--activation-quorum`).
    Activation,
    /// The AES-256 wrap key of the root key's backups (`--backup-quorum`): no PIN.
    Backup,
}

impl Purpose {
    /// The token role whose PIN this quorum holds (none for the backup wrap key).
    pub fn role(self) -> Option<crate::token::Role> {
        match self {
            Purpose::SoPin => Some(crate::token::Role::SecurityOfficer),
            Purpose::Activation => Some(crate::token::Role::User),
            Purpose::Backup => None,
        }
    }

    /// What the secret is, in messages: "SO PIN", "user PIN", "backup wrap key".
    pub fn secret_name(self) -> &'static str {
        self.role().map_or("backup wrap key", crate::token::Role::pin_name)
    }
}

impl Purpose {
    /// The `purpose` text of the share files.
    pub fn text(self) -> &'static str {
        match self {
            Purpose::SoPin => "SO PIN of a PKCS#11 token holding an offline root CA key",
            Purpose::Activation => {
                "user PIN (activation) of a PKCS#11 token holding an offline root CA key"
            }
            Purpose::Backup => "AES-256 wrap key of the backups of an offline root CA key",
        }
    }

    /// File names: share-K-of-N.json and activation-share-K-of-N.json.
    pub fn file_name(self, index: u8, shares: u8) -> String {
        match self {
            Purpose::SoPin => format!("share-{index}-of-{shares}.json"),
            Purpose::Activation => format!("activation-share-{index}-of-{shares}.json"),
            Purpose::Backup => format!("backup-share-{index}-of-{shares}.json"),
        }
    }

    fn from_text(text: &str) -> Option<Purpose> {
        [Purpose::SoPin, Purpose::Activation, Purpose::Backup]
            .into_iter()
            .find(|p| p.text() == text)
    }

    // The SO tags are the ones share files had before activation quorums existed.
    fn share_tag(self) -> &'static [u8] {
        match self {
            Purpose::SoPin => b"hsm-demo share check v1\0",
            Purpose::Activation => b"hsm-demo activation share check v1\0",
            Purpose::Backup => b"hsm-demo backup share check v1\0",
        }
    }

    fn secret_tag(self) -> &'static [u8] {
        match self {
            Purpose::SoPin => b"hsm-demo secret check v1\0",
            Purpose::Activation => b"hsm-demo activation secret check v1\0",
            Purpose::Backup => b"hsm-demo backup secret check v1\0",
        }
    }
}

fn share_check(purpose: Purpose, binding: &Binding, index: u8, threshold: u8, bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(purpose.share_tag());
    h.update(binding.ceremony_id.as_bytes());
    h.update(&[0, index, threshold]);
    h.update(bytes);
    hex::encode(h.finish())
}

fn secret_check(purpose: Purpose, binding: &Binding, secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(purpose.secret_tag());
    h.update(binding.ceremony_id.as_bytes());
    h.update(&[0]);
    h.update(secret);
    hex::encode(h.finish())
}

/// Splits `secret` into share files (not yet written) for `quorum`.
pub fn split(secret: &[u8], quorum: Quorum, binding: &Binding, purpose: Purpose) -> Vec<ShareFile> {
    let shares: Vec<Share> = Sharks(quorum.threshold)
        .dealer(secret)
        .take(quorum.shares as usize)
        .collect();
    let bytes: Vec<Zeroizing<Vec<u8>>> = shares
        .iter()
        .map(|s| Zeroizing::new(Vec::from(s)))
        .collect();
    let checks: Vec<String> = bytes
        .iter()
        .map(|b| share_check(purpose, binding, b[0], quorum.threshold, b))
        .collect();
    let id = set_id(&checks);
    bytes
        .iter()
        .map(|b| ShareFile {
            format: FORMAT.into(),
            purpose: purpose.text().into(),
            binding: binding.clone(),
            index: b[0],
            threshold: quorum.threshold,
            shares: quorum.shares,
            share: hex::encode(b.as_slice()),
            share_checks: checks.clone(),
            secret_check: secret_check(purpose, binding, secret),
            set_id: Some(id.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests;
