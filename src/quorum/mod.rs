//! The m-of-n quorum: Shamir secret sharing of the token's SO PIN (blahaj, GF(256)),
//! share files with check values, and recombination that names a bad share.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use blahaj::{Share, Sharks};
use openssl::sha::Sha256;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The share file format identifier.
pub const FORMAT: &str = "hsm-demo-quorum-share/1";

/// `M/N`: M shares of N open the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    pub threshold: u8,
    pub shares: u8,
}

impl std::str::FromStr for Quorum {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (m, n) = s
            .split_once('/')
            .ok_or_else(|| format!("quorum '{s}' is not M/N (e.g. 3/5)"))?;
        let m: u8 = m
            .trim()
            .parse()
            .map_err(|_| format!("quorum '{s}': M is not a number"))?;
        let n: u8 = n
            .trim()
            .parse()
            .map_err(|_| format!("quorum '{s}': N is not a number"))?;
        if m < 2 {
            return Err(format!(
                "quorum '{s}': M must be at least 2 (one custodian alone is no quorum)"
            ));
        }
        if n < m || n > 10 {
            return Err(format!("quorum '{s}': N must be between M and 10"));
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
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("share file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("share file {path} (share {index}) is corrupted or altered: it does not match its check value")]
    BadShare { path: String, index: u8 },
    #[error(
        "share files disagree on the share set; {path} differs from the others and was altered"
    )]
    Inconsistent { path: String },
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
}

fn share_check(binding: &Binding, index: u8, threshold: u8, bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"hsm-demo share check v1\0");
    h.update(binding.ceremony_id.as_bytes());
    h.update(&[0, index, threshold]);
    h.update(bytes);
    hex::encode(h.finish())
}

fn secret_check(binding: &Binding, secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"hsm-demo secret check v1\0");
    h.update(binding.ceremony_id.as_bytes());
    h.update(&[0]);
    h.update(secret);
    hex::encode(h.finish())
}

/// Splits `secret` into share files (not yet written) for `quorum`.
pub fn split(secret: &[u8], quorum: Quorum, binding: &Binding, purpose: &str) -> Vec<ShareFile> {
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
        .map(|b| share_check(binding, b[0], quorum.threshold, b))
        .collect();
    bytes
        .iter()
        .map(|b| ShareFile {
            format: FORMAT.into(),
            purpose: purpose.into(),
            binding: binding.clone(),
            index: b[0],
            threshold: quorum.threshold,
            shares: quorum.shares,
            share: hex::encode(b.as_slice()),
            share_checks: checks.clone(),
            secret_check: secret_check(binding, secret),
        })
        .collect()
}

/// Reads share files and recombines the secret, naming any share that is corrupt,
/// altered, duplicated, or from another set.
pub fn combine(paths: &[PathBuf]) -> Result<(Zeroizing<Vec<u8>>, Binding), QuorumError> {
    let mut files = Vec::new();
    for p in paths {
        files.push((p.display().to_string(), read_share_file(p)?));
    }
    // The share set every file claims: the majority wins, a minority file is named.
    let set_key = |f: &ShareFile| {
        (
            f.binding.clone(),
            f.threshold,
            f.shares,
            f.share_checks.clone(),
            f.secret_check.clone(),
        )
    };
    let mut votes: HashMap<_, Vec<String>> = HashMap::new();
    for (path, f) in &files {
        votes.entry(set_key(f)).or_default().push(path.clone());
    }
    if votes.len() > 1 {
        let mut ranked: Vec<_> = votes.values().collect();
        ranked.sort_by_key(|v| std::cmp::Reverse(v.len()));
        if ranked[0].len() > ranked[1].len() {
            let majority = ranked[0];
            let odd = files
                .iter()
                .find(|(p, _)| !majority.contains(p))
                .map(|(p, _)| p.clone())
                .unwrap_or_default();
            return Err(QuorumError::Inconsistent { path: odd });
        }
        return Err(QuorumError::Undecidable(
            files
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let Some((_, first)) = files.first() else {
        return Err(QuorumError::TooFew {
            given: 0,
            threshold: 0,
            shares: 0,
        });
    };
    let (binding, threshold, total) = (first.binding.clone(), first.threshold, first.shares);
    let mut by_index: BTreeMap<u8, (String, Zeroizing<Vec<u8>>)> = BTreeMap::new();
    for (path, f) in &files {
        let bytes = Zeroizing::new(hex::decode(&f.share).map_err(|_| QuorumError::BadShare {
            path: path.clone(),
            index: f.index,
        })?);
        // x, then at least one byte of y: anything shorter is not a share.
        let ok = bytes.len() >= 2
            && bytes.first() == Some(&f.index)
            && f.index >= 1
            && f.share_checks.get(usize::from(f.index) - 1)
                == Some(&share_check(&binding, f.index, threshold, &bytes));
        if !ok {
            return Err(QuorumError::BadShare {
                path: path.clone(),
                index: f.index,
            });
        }
        if let Some((other, _)) = by_index.get(&f.index) {
            return Err(QuorumError::Duplicate {
                index: f.index,
                a: other.clone(),
                b: path.clone(),
            });
        }
        by_index.insert(f.index, (path.clone(), bytes));
    }
    if by_index.len() < usize::from(threshold) {
        return Err(QuorumError::TooFew {
            given: by_index.len(),
            threshold,
            shares: total,
        });
    }
    let shares = by_index
        .iter()
        .map(|(index, (path, b))| {
            Share::try_from(b.as_slice()).map_err(|_| QuorumError::BadShare {
                path: path.clone(),
                index: *index,
            })
        })
        .collect::<Result<Vec<Share>, _>>()?;
    let secret = Zeroizing::new(
        Sharks(threshold)
            .recover(&shares)
            .map_err(|_| QuorumError::WrongSecret)?,
    );
    if secret_check(&binding, &secret) != first.secret_check {
        return Err(QuorumError::WrongSecret);
    }
    Ok((secret, binding))
}

fn read_share_file(path: &Path) -> Result<ShareFile, QuorumError> {
    let unreadable = |reason: String| QuorumError::Unreadable {
        path: path.display().to_string(),
        reason,
    };
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?);
    let f: ShareFile =
        serde_json::from_str(&text).map_err(|e| unreadable(format!("not a share file ({e})")))?;
    if f.format != FORMAT {
        return Err(unreadable(format!("format '{}' is not {FORMAT}", f.format)));
    }
    if f.share_checks.len() != usize::from(f.shares) || f.threshold < 2 || f.threshold > f.shares {
        return Err(unreadable("inconsistent threshold or share count".into()));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            ceremony_id: "c1".into(),
            token_label: "t".into(),
            token_serial: "s".into(),
            root_cert_sha256: "f".into(),
        }
    }

    fn write_all(dir: &Path, files: &[ShareFile]) -> Vec<PathBuf> {
        files
            .iter()
            .map(|f| {
                let p = dir.join(format!("share-{}.json", f.index));
                std::fs::write(&p, serde_json::to_string(f).unwrap()).unwrap();
                p
            })
            .collect()
    }

    #[test]
    fn any_threshold_subset_recovers_and_fewer_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let secret = b"0123456789abcdef0123456789abcdef";
        let paths = write_all(
            dir.path(),
            &split(secret, "3/5".parse().unwrap(), &binding(), "test"),
        );
        for subset in [[0, 1, 2], [0, 2, 4], [1, 3, 4], [2, 3, 4]] {
            let chosen: Vec<PathBuf> = subset.iter().map(|&i| paths[i].clone()).collect();
            assert_eq!(combine(&chosen).unwrap().0.as_slice(), secret);
        }
        assert!(matches!(
            combine(&paths[..2]),
            Err(QuorumError::TooFew {
                given: 2,
                threshold: 3,
                shares: 5
            })
        ));
        let dup = vec![paths[0].clone(), paths[0].clone(), paths[1].clone()];
        assert!(matches!(
            combine(&dup),
            Err(QuorumError::Duplicate { index: 1, .. })
        ));
    }

    #[test]
    fn a_tampered_share_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = split(
            b"secret-secret-secret",
            "3/5".parse().unwrap(),
            &binding(),
            "test",
        );
        // Flip a byte of share 2's y values.
        let mut bytes = hex::decode(&files[1].share).unwrap();
        bytes[3] ^= 1;
        files[1].share = hex::encode(bytes);
        let paths = write_all(dir.path(), &files);
        match combine(&paths[..3]) {
            Err(QuorumError::BadShare { index: 2, path }) => {
                assert!(path.ends_with("share-2.json"))
            }
            other => panic!("{other:?}"),
        }
        // Altering the check list too makes that file the odd one out.
        let mut forged = files.clone();
        let fixed = share_check(&binding(), 2, 3, &hex::decode(&forged[1].share).unwrap());
        forged[1].share_checks[1] = fixed;
        let paths = write_all(dir.path(), &forged);
        match combine(&paths[..3]) {
            Err(QuorumError::Inconsistent { path }) => assert!(path.ends_with("share-2.json")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn crafted_short_shares_and_no_shares_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = split(b"0123456789abcdef", "2/3".parse().unwrap(), &binding(), "t");
        // Every file made consistent around 1-byte shares (x only, no y).
        for f in files.iter_mut() {
            f.share = hex::encode([f.index]);
        }
        let checks: Vec<String> = files
            .iter()
            .map(|f| share_check(&binding(), f.index, 2, &[f.index]))
            .collect();
        for f in files.iter_mut() {
            f.share_checks = checks.clone();
        }
        let paths = write_all(dir.path(), &files);
        assert!(matches!(
            combine(&paths[..2]),
            Err(QuorumError::BadShare { index: 1, .. })
        ));
        assert!(matches!(combine(&[]), Err(QuorumError::TooFew { given: 0, .. })));
    }

    #[test]
    fn quorum_bounds() {
        assert_eq!(
            "3/5".parse::<Quorum>().unwrap(),
            Quorum {
                threshold: 3,
                shares: 5
            }
        );
        assert!("1/5".parse::<Quorum>().is_err());
        assert!("4/3".parse::<Quorum>().is_err());
        assert!("3/11".parse::<Quorum>().is_err());
        assert!("x".parse::<Quorum>().is_err());
    }
}
