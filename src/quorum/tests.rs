//! Splitting, recombination and the refusals, without a token.

use super::*;
use std::path::{Path, PathBuf};

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
        &split(secret, "3/5".parse().unwrap(), &binding(), Purpose::SoPin),
    );
    for subset in [[0, 1, 2], [0, 2, 4], [1, 3, 4], [2, 3, 4]] {
        let chosen: Vec<PathBuf> = subset.iter().map(|&i| paths[i].clone()).collect();
        assert_eq!(&*combine(&chosen, Purpose::SoPin).unwrap().0, secret);
    }
    assert!(matches!(
        combine(&paths[..2], Purpose::SoPin),
        Err(QuorumError::TooFew {
            given: 2,
            threshold: 3,
            shares: 5
        })
    ));
    let dup = vec![paths[0].clone(), paths[0].clone(), paths[1].clone()];
    assert!(matches!(
        combine(&dup, Purpose::SoPin),
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
        Purpose::SoPin,
    );
    // Flip a byte of share 2's y values.
    let mut bytes = hex::decode(&files[1].share).unwrap();
    bytes[3] ^= 1;
    files[1].share = hex::encode(bytes);
    let paths = write_all(dir.path(), &files);
    match combine(&paths[..3], Purpose::SoPin) {
        Err(QuorumError::BadShare { index: 2, path }) => {
            assert!(path.ends_with("share-2.json"))
        }
        other => panic!("{other:?}"),
    }
    // Altering the check list too: the file's set id no longer follows from it.
    let mut forged = files.clone();
    let fixed = share_check(Purpose::SoPin, &binding(), 2, 3, &hex::decode(&forged[1].share).unwrap());
    forged[1].share_checks[1] = fixed;
    let paths = write_all(dir.path(), &forged);
    match combine(&paths[..3], Purpose::SoPin) {
        Err(QuorumError::Unreadable { path, reason }) => {
            assert!(path.ends_with("share-2.json") && reason.contains("set id"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // And the set id recomputed as well: that file is the odd one out, by set.
    let set = files[0].set_id();
    forged[1].set_id = Some(forged[1].set_id());
    let paths = write_all(dir.path(), &forged);
    match combine(&paths[..3], Purpose::SoPin) {
        Err(QuorumError::Inconsistent { path, odd_set, set: majority }) => {
            assert!(path.ends_with("share-2.json"));
            assert_eq!(majority, set);
            assert_ne!(odd_set, set);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn crafted_short_shares_and_no_shares_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = split(b"0123456789abcdef", "2/3".parse().unwrap(), &binding(), Purpose::Activation);
    // Every file made consistent around 1-byte shares (x only, no y).
    for f in files.iter_mut() {
        f.share = hex::encode([f.index]);
    }
    let checks: Vec<String> = files
        .iter()
        .map(|f| share_check(Purpose::Activation, &binding(), f.index, 2, &[f.index]))
        .collect();
    for f in files.iter_mut() {
        f.share_checks = checks.clone();
    }
    let paths = write_all(dir.path(), &files);
    assert!(matches!(
        combine(&paths[..2], Purpose::Activation),
        Err(QuorumError::BadShare { index: 1, .. })
    ));
    assert!(matches!(combine(&[], Purpose::Activation), Err(QuorumError::TooFew { given: 0, .. })));
}

#[test]
fn a_set_relabelled_as_the_other_purpose_never_recombines() {
    let dir = tempfile::tempdir().unwrap();
    let secret = b"0123456789abcdef0123456789abcdef";
    let mut files = split(secret, "2/3".parse().unwrap(), &binding(), Purpose::SoPin);
    let paths = write_all(dir.path(), &files);
    assert!(matches!(
        combine(&paths[..2], Purpose::Activation),
        Err(QuorumError::WrongPurpose { .. })
    ));
    // Relabelled in the files too: the activation check values do not match.
    for f in files.iter_mut() {
        f.purpose = Purpose::Activation.text().into();
    }
    let paths = write_all(dir.path(), &files);
    assert!(matches!(
        combine(&paths[..2], Purpose::Activation),
        Err(QuorumError::BadShare { .. })
    ));
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

/// The process's locked memory in kB, from /proc/self/status.
fn locked_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_recombined_secret_lives_in_locked_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB: a mapping of its own, not pages other tests' buffers share.
    let secret = vec![0x5au8; 1 << 20];
    let paths = write_all(dir.path(), &split(&secret, "2/3".parse().unwrap(), &binding(), Purpose::Backup));
    let (recovered, _) = combine(&paths[..2], Purpose::Backup).unwrap();
    assert_eq!(&*recovered, secret.as_slice());
    assert!(locked_kb() >= 1024, "VmLck {} kB", locked_kb());
}
