//! Share set ids and `quorum-check-share`: one custodian checks a share alone, with no
//! token, no PIN and no other share, against real ceremonies on SoftHSM2 tokens.

mod common;

use std::path::Path;

use common::{fails_with, ok, Command, SoftHsm, SO_PIN};

/// quorum-check-share with no module, no token and no PIN anywhere.
fn check(hsm: &SoftHsm, file: &Path, dir: Option<&Path>) -> Command {
    let mut cmd = hsm.bare_cmd();
    cmd.args(["--module", "/nonexistent.so", "quorum-check-share", "--json"]).arg(file);
    if let Some(d) = dir {
        cmd.arg("--ceremony-dir").arg(d);
    }
    cmd
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The set ids the ceremony's transcript records, in order (SO, then activation).
fn transcript_sets(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("transcript.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("share set id: ").map(str::to_string))
        .collect()
}

fn edit(from: &Path, to: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let mut v = json(&std::fs::read_to_string(from).unwrap());
    change(&mut v);
    std::fs::write(to, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_good_share_checks_alone_and_its_set_and_digest_are_the_transcripts() {
    let hsm = SoftHsm::new();
    let dir = common::two_quorum_ceremony(&hsm);
    let sets = transcript_sets(&dir);
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert_ne!(sets[0], sets[1]);
    let share = dir.join("activation-share-2-of-3.json");
    let found = json(&ok(&mut check(&hsm, &share, Some(&dir))));
    assert_eq!(found["ok"], true);
    assert_eq!(found["transcript"], "listed");
    assert_eq!(found["share"]["set_id"], sets[1].as_str());
    assert_eq!(found["share"]["index"], 2);
    assert_eq!(found["share"]["threshold"], 2);
    assert_eq!(found["share"]["secret"], "user PIN");
    // The SHA-256 is the file's, as the openssl CLI computes it.
    let dgst = ok(hsm.openssl().args(["dgst", "-sha256", "-r"]).arg(&share));
    assert_eq!(found["sha256"].as_str().unwrap(), dgst.split_whitespace().next().unwrap());
    // Every share file carries its set id; verify-ceremony names it.
    let so = json(&std::fs::read_to_string(dir.join("share-1-of-3.json")).unwrap());
    assert_eq!(so["set_id"], sets[0].as_str());
    let mut verify = hsm.bare_cmd();
    let out = ok(verify.args(["--module", "/nonexistent.so", "verify-ceremony"]).arg(&dir));
    assert!(out.contains(&format!("set {}", sets[0])) && out.contains(&format!("set {}", sets[1])), "{out}");
    // A share file written before set ids existed has the same id, computed.
    let old = hsm.path("old-format.json");
    edit(&share, &old, |v| {
        v.as_object_mut().unwrap().remove("set_id");
    });
    let found = json(&ok(&mut check(&hsm, &old, None)));
    assert_eq!(found["share"]["set_id"], sets[1].as_str());
}

#[test]
fn altered_truncated_and_foreign_shares_each_fail_with_their_reason() {
    let hsm = SoftHsm::new();
    let dir = common::two_quorum_ceremony(&hsm);
    let share = dir.join("share-3-of-3.json");
    let refused = |file: &Path, with_dir: bool| {
        let line = fails_with(&mut check(&hsm, file, with_dir.then_some(dir.as_path())), 1);
        assert_eq!(line.lines().count(), 1, "{line}");
        line
    };

    let flipped = hsm.path("flipped.json");
    edit(&share, &flipped, |v| {
        let mut b = hex::decode(v["share"].as_str().unwrap()).unwrap();
        b[4] ^= 1;
        v["share"] = hex::encode(b).into();
    });
    assert!(refused(&flipped, false).contains("share 3 is corrupted or altered"));

    let relabelled = hsm.path("relabelled.json");
    edit(&share, &relabelled, |v| v["set_id"] = "0123456789abcdef".into());
    assert!(refused(&relabelled, false).contains("set id 0123456789abcdef is not the one its check values give"));

    let truncated = hsm.path("truncated.json");
    let bytes = std::fs::read(&share).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(refused(&truncated, false).contains("not a share file"));

    // The same share, re-encoded: valid alone, but not the file the transcript lists.
    let reencoded = hsm.path("share-3-of-3.json");
    edit(&share, &reencoded, |_| {});
    json(&ok(&mut check(&hsm, &reencoded, None)));
    assert!(refused(&reencoded, true).contains("is not the"));

    // A share of another ceremony's set: valid alone, refused by this directory's records.
    let other = SoftHsm::new();
    let other_dir = common::two_quorum_ceremony(&other);
    let foreign = other_dir.join("share-1-of-3.json");
    let found = json(&ok(&mut check(&hsm, &foreign, None)));
    let line = refused(&foreign, true);
    let set = found["share"]["set_id"].as_str().unwrap();
    assert!(line.contains(&format!("belongs to share set {set}")), "{line}");
    for recorded in transcript_sets(&dir) {
        assert!(line.contains(&recorded), "{line}");
    }
}

/// The README's "Two quorums" section, every sh block in order, run as written on a
/// fresh embedded-default token with the demo PINs.
#[test]
fn the_readme_quorum_walkthrough_runs_as_shown() {
    let script = common::readme_script("### Two quorums, a rehearsal", "\n### ");
    assert!(script.contains("quorum-check-share") && script.contains("verify-ceremony"), "{script}");
    let (dir, stdout, _) = common::run_script(
        &format!("hsm-demo init-token --label vault\n{script}"),
        &[("HSM_DEMO_SO_PIN", SO_PIN), ("HSM_DEMO_PIN", common::USER_PIN)],
    );
    assert!(stdout.contains("Ceremony verified:"), "{stdout}");
    assert!(stdout.contains("Share check holds"), "{stdout}");
    assert!(stdout.contains("Verified OK") && stdout.contains("Re-dealt the user PIN"), "{stdout}");
    assert!(dir.path().join("redeal-1/activation-share-4-of-4.json").is_file());
    assert!(stdout.contains("reset the user PIN of token 'vault'") && stdout.contains("in reset-1"), "{stdout}");
}
