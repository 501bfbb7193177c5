//! Share files read back: each file's structure and its own check value, a set's
//! consistency (the majority names an altered file), and recombination.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use blahaj::{Share, Sharks};
use zeroize::Zeroizing;

use super::{secret_check, share_check, Binding, Locked, Purpose, QuorumError, ShareFile, FORMAT};

/// A share file read and checked on its own: the format, the purpose, the counts,
/// and its share bytes against its own entry in the set's check list. Returns the
/// file and its share bytes.
pub fn check_file(path: &Path) -> Result<(ShareFile, Purpose, Zeroizing<Vec<u8>>), QuorumError> {
    let name = path.display().to_string();
    let unreadable = |reason: String| QuorumError::Unreadable {
        path: name.clone(),
        reason,
    };
    let bytes = Zeroizing::new(crate::output::read_regular(path).map_err(|e| unreadable(crate::output::reason(&e)))?);
    super::lock(bytes.as_ptr(), bytes.len());
    let text = std::str::from_utf8(&bytes).map_err(|_| unreadable("not UTF-8 text".into()))?;
    let f: ShareFile =
        serde_json::from_str(text).map_err(|e| unreadable(format!("not a share file ({e})")))?;
    if f.format != FORMAT {
        return Err(unreadable(format!("format '{}' is not {FORMAT}", f.format)));
    }
    let purpose = Purpose::from_text(&f.purpose)
        .ok_or_else(|| unreadable(format!("unknown purpose '{}'", f.purpose)))?;
    if f.share_checks.len() != usize::from(f.shares) || f.threshold < 2 || f.threshold > f.shares {
        return Err(unreadable("inconsistent threshold or share count".into()));
    }
    let bad = || QuorumError::BadShare {
        path: name.clone(),
        index: f.index,
    };
    let bytes = Zeroizing::new(hex::decode(&f.share).map_err(|_| bad())?);
    super::lock(bytes.as_ptr(), bytes.len());
    // x, then at least one byte of y: anything shorter is not a share.
    let ok = bytes.len() >= 2
        && bytes.first() == Some(&f.index)
        && f.index >= 1
        && f.share_checks.get(usize::from(f.index) - 1)
            == Some(&share_check(purpose, &f.binding, f.index, f.threshold, &bytes));
    if !ok {
        return Err(bad());
    }
    if f.set_id.as_ref().is_some_and(|id| *id != f.set_id()) {
        return Err(unreadable(format!(
            "its set id {} is not the one its check values give ({}): the file was altered",
            f.set_id.as_deref().unwrap_or_default(),
            f.set_id()
        )));
    }
    Ok((f, purpose, bytes))
}

/// The files must claim one share set: the majority wins and a minority file is named.
pub fn check_set(files: &[(String, ShareFile)]) -> Result<(), QuorumError> {
    let set_key = |f: &ShareFile| {
        (
            f.binding.clone(),
            f.purpose.clone(),
            f.threshold,
            f.shares,
            f.share_checks.clone(),
            f.secret_check.clone(),
        )
    };
    let mut votes: HashMap<_, Vec<String>> = HashMap::new();
    for (path, f) in files {
        votes.entry(set_key(f)).or_default().push(path.clone());
    }
    if votes.len() <= 1 {
        return Ok(());
    }
    let mut ranked: Vec<_> = votes.values().collect();
    ranked.sort_by_key(|v| std::cmp::Reverse(v.len()));
    if ranked[0].len() > ranked[1].len() {
        let majority = ranked[0];
        let set_of = |pick: &dyn Fn(&String) -> bool| {
            files
                .iter()
                .find(|(p, _)| pick(p))
                .map(|(p, f)| (p.clone(), f.set_id()))
                .unwrap_or_default()
        };
        let (path, odd_set) = set_of(&|p| !majority.contains(p));
        let (_, set) = set_of(&|p| majority.contains(p));
        return Err(QuorumError::Inconsistent { path, odd_set, set });
    }
    Err(QuorumError::Undecidable(
        files
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

/// Reads share files of `purpose` and recombines the secret, naming any share that
/// is corrupt, altered, duplicated, of the other purpose, or from another set. The
/// value is returned only if it passes the set's secret check: a wrong value never
/// reaches a token.
pub fn combine(
    paths: &[PathBuf],
    want: Purpose,
) -> Result<(Locked, Binding), QuorumError> {
    let mut files = Vec::new();
    let mut by_index: BTreeMap<u8, (String, Zeroizing<Vec<u8>>)> = BTreeMap::new();
    for p in paths {
        let (f, purpose, bytes) = check_file(p)?;
        let path = p.display().to_string();
        // Used, as the custodian handed it over, with a word: ssh refuses such a key file.
        if crate::output::readable_by_others(p) {
            crate::console::note(&format!(
                "share file {path} can be read by other users of this machine; keep it to its custodian (chmod 600)"
            ));
        }
        if purpose != want {
            return Err(QuorumError::WrongPurpose {
                path,
                is: purpose.text(),
                want: want.text(),
            });
        }
        if let Some((other, _)) = by_index.get(&f.index) {
            return Err(QuorumError::Duplicate {
                index: f.index,
                a: other.clone(),
                b: path,
            });
        }
        by_index.insert(f.index, (path.clone(), bytes));
        files.push((path, f));
    }
    check_set(&files)?;
    let Some((_, first)) = files.first() else {
        return Err(QuorumError::TooFew {
            given: 0,
            threshold: 0,
            shares: 0,
        });
    };
    if by_index.len() < usize::from(first.threshold) {
        return Err(QuorumError::TooFew {
            given: by_index.len(),
            threshold: first.threshold,
            shares: first.shares,
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
    let recovered = Zeroizing::new(
        Sharks(first.threshold)
            .recover(&shares)
            .map_err(|_| QuorumError::WrongSecret)?,
    );
    let secret = Locked::copy_of(&recovered);
    drop(recovered);
    if secret_check(want, &first.binding, &secret) != first.secret_check {
        return Err(QuorumError::WrongSecret);
    }
    Ok((secret, first.binding.clone()))
}
