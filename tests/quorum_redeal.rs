//! `quorum-redeal`: a quorum's PIN replaced by a fresh token-RNG secret in a new share
//! set, the old set retired (refused by name, with no C_Login), the transcript signed
//! and checked with the openssl CLI; and kill -9 at random points of a re-deal, which
//! always leaves a share set that opens the role, against real SoftHSM2 tokens.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, ok, spy_calls, Command, SoftHsm, SO_PIN, SPY};

fn share(dir: &Path, prefix: &str, k: u8, n: u8) -> String {
    dir.join(format!("{prefix}share-{k}-of-{n}.json")).display().to_string()
}

/// hsm-demo with the activation shares `files` as the user PIN and no PIN elsewhere.
fn with_shares(hsm: &SoftHsm, files: &[String]) -> Command {
    let mut cmd = hsm.cmd();
    cmd.env_remove("HSM_DEMO_PIN").env_remove("HSM_DEMO_SO_PIN");
    for f in files {
        cmd.arg("--pin-share").arg(f);
    }
    cmd
}

/// The share set id a transcript records after `prefix`.
fn recorded(dir: &Path, prefix: &str) -> String {
    std::fs::read_to_string(dir.join("transcript.txt"))
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("no '{prefix}' in {}", dir.display()))
}

#[test]
fn a_root_s_life_re_deals_both_quorums_and_retires_the_old_shares() {
    let hsm = SoftHsm::new();
    let c = common::two_quorum_ceremony(&hsm);
    // The ceremony records the SO set, then the activation set.
    let sets: Vec<String> = std::fs::read_to_string(c.join("transcript.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("share set id: ").map(str::to_string))
        .collect();
    // Custodian 2 leaves: 1 and 3 re-deal the activation quorum to 2-of-4.
    let out = ok(with_shares(&hsm, &[]).args([
        "quorum-redeal", "--role", "user",
        "--share", &share(&c, "activation-", 1, 3), "--share", &share(&c, "activation-", 3, 3),
        "--quorum", "2/4", "--out", "r1",
    ]));
    let r1 = hsm.path("r1");
    let new_set = recorded(&r1, "share set id: ");
    assert!(out.contains("retired") && out.contains(&new_set), "{out}");
    assert_eq!(recorded(&r1, "replaces share set id: "), sets[1]);
    assert!(!sets.contains(&new_set));
    assert!(!r1.join("INCOMPLETE").exists());
    // The transcript verifies with the openssl CLI under the root's public key, and
    // lists every new share file with the SHA-256 quorum-check-share finds.
    ok(hsm.openssl().current_dir(&r1).args(["dgst", "-sha256", "-verify", "transcript-signer.pub.pem", "-signature", "transcript.sig", "transcript.txt"]));
    assert_eq!(std::fs::read(r1.join("transcript-signer.pub.pem")).unwrap(), std::fs::read(c.join("root-ca.pub.pem")).unwrap());
    for k in 1..=4 {
        let mut check = hsm.bare_cmd();
        let found = ok(check.args(["--module", "/nonexistent.so", "quorum-check-share", "--ceremony-dir"]).arg(&r1).arg(share(&r1, "activation-", k, 4)));
        assert!(found.contains("listed with this SHA-256"), "{found}");
    }
    // verify-ceremony: the evidence holds; the old activation files are named retired.
    let mut verify = hsm.bare_cmd();
    let report = ok(verify.args(["--module", "/nonexistent.so", "verify-ceremony"]).arg(&c));
    assert!(report.contains("Ceremony verified:"), "{report}");
    assert!(report.contains(&format!("activation-share-2-of-3.json: retired: share set {} was replaced", sets[1])), "{report}");
    assert!(!report.contains("  note  share-1-of-3.json: retired"), "{report}");
    // The departed custodian's share, with another old one: refused by name, no login.
    let log = hsm.path("spy.log");
    let line = fails_with(
        with_shares(&hsm, &[share(&c, "activation-", 2, 3), share(&c, "activation-", 3, 3)])
            .env("PKCS11SPY", common::softhsm_module())
            .env("PKCS11SPY_OUTPUT", &log)
            .args(["--module", SPY, "sign", "--label", "root-ca-key", "--data", "x"]),
        2,
    );
    assert!(line.contains("activation-share-2-of-3.json belongs to share set") && line.contains(&format!("by set {new_set}")), "{line}");
    assert_eq!(spy_calls(&log, "C_Login"), 0);
    // On a host without the record, the token itself refuses the old PIN.
    std::fs::remove_file(hsm.path(".local/share/hsm-demo/retired-share-sets")).unwrap();
    let line = fails_with(with_shares(&hsm, &[share(&c, "activation-", 1, 3), share(&c, "activation-", 2, 3)]).args(["sign", "--label", "root-ca-key", "--data", "x"]), 3);
    assert!(line.contains("user PIN incorrect"), "{line}");
    // The new shares sign (any two of the four, the new custodian's among them).
    let signed = ok(with_shares(&hsm, &[share(&r1, "activation-", 2, 4), share(&r1, "activation-", 4, 4)]).args(["sign", "--label", "root-ca-key", "--data", "x"]));
    assert!(signed.contains("Signature:"), "{signed}");

    // The SO quorum re-dealt to 3-of-5 (the user login for the transcript: new shares).
    let new_user = [share(&r1, "activation-", 1, 4), share(&r1, "activation-", 3, 4)];
    ok(with_shares(&hsm, &new_user).args([
        "quorum-redeal", "--role", "so", "--share", &share(&c, "", 1, 3), "--share", &share(&c, "", 2, 3),
        "--quorum", "3/5", "--out", "r2",
    ]));
    let r2 = hsm.path("r2");
    let line = fails_with(hsm.cmd().args(["quorum-reset-pin", "--share", &share(&c, "", 1, 3), "--share", &share(&c, "", 3, 3)]), 2);
    assert!(line.contains("share-1-of-3.json belongs to share set") && line.contains("replaced on"), "{line}");
    // Three of the new SO shares open the SO role: they re-deal it again.
    ok(with_shares(&hsm, &new_user).args([
        "quorum-redeal", "--role", "so", "--share", &share(&r2, "", 1, 5), "--share", &share(&r2, "", 3, 5),
        "--share", &share(&r2, "", 5, 5), "--out", "r3",
    ]));
    assert!(hsm.path("r3/share-5-of-5.json").is_file());
}

#[test]
fn refusals_come_before_anything_changes() {
    let hsm = SoftHsm::new();
    let c = common::two_quorum_ceremony(&hsm);
    let act = [share(&c, "activation-", 1, 3), share(&c, "activation-", 2, 3)];
    // SO shares for the user role.
    let line = fails_with(with_shares(&hsm, &[]).args(["quorum-redeal", "--role", "user", "--share", &share(&c, "", 1, 3), "--share", &share(&c, "", 2, 3), "--out", "x"]), 2);
    assert!(line.contains("not of the user PIN"), "{line}");
    // Too few shares.
    let line = fails_with(with_shares(&hsm, &[]).args(["quorum-redeal", "--role", "user", "--share", &act[0], "--out", "x"]), 2);
    assert!(line.contains("needs 2 of 3"), "{line}");
    // An existing --out.
    std::fs::create_dir(hsm.path("exists")).unwrap();
    let line = fails_with(with_shares(&hsm, &[]).args(["quorum-redeal", "--role", "user", "--share", &act[0], "--share", &act[1], "--out", "exists"]), 2);
    assert!(line.contains("already exists"), "{line}");
    // A CR and LF in --out: refused, nothing created, and the line shows them escaped.
    let line = fails_with(with_shares(&hsm, &[]).args(["quorum-redeal", "--role", "user", "--share", &act[0], "--share", &act[1], "--out", "x\r\ny"]), 2);
    assert!(line.contains("--out x\\r y: has a control character") && !line.contains('\r'), "{line:?}");
    assert!(!hsm.path("x\r\ny").exists());
    // No key to sign the transcript: the directory is removed and the PIN unchanged.
    let out = with_shares(&hsm, &[]).args(["quorum-redeal", "--role", "user", "--share", &act[0], "--share", &act[1], "--out", "y", "--sign-with", "nope"]).output().unwrap();
    assert!(!out.status.success());
    let line = String::from_utf8_lossy(&out.stderr);
    assert!(line.contains("--sign-with"), "{line}");
    assert!(!hsm.path("y").exists());
    ok(with_shares(&hsm, &act).args(["sign", "--label", "root-ca-key", "--data", "x"]));
}

/// Whether the activation shares `files` open the user role (list-keys logs in).
fn opens(hsm: &SoftHsm, files: &[String]) -> bool {
    with_shares(hsm, files).args(["list-keys"]).output().unwrap().status.success()
}

#[test]
fn re_deals_killed_at_random_points_always_leave_a_set_that_opens_the_role() {
    let hsm = SoftHsm::new();
    let c = common::two_quorum_ceremony(&hsm);
    let mut current = vec![share(&c, "activation-", 1, 3), share(&c, "activation-", 2, 3)];
    let mut seed: u64 = 5;
    let (mut moved, mut kept) = (0, 0);
    for i in 0..30 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let out = format!("k{i}");
        let mut args = vec!["quorum-redeal", "--role", "user", "--out", &out];
        for f in &current {
            args.extend(["--share", f.as_str()]);
        }
        let mut cmd = hsm.spawnable(SO_PIN, &args);
        cmd.env_remove("HSM_DEMO_PIN");
        common::kill_after(cmd, (seed >> 33) % 80_000);
        let dir = hsm.path(&out);
        let new = vec![share(&dir, "activation-", 1, 3), share(&dir, "activation-", 3, 3)];
        if new.iter().all(|f| Path::new(f).is_file()) && opens(&hsm, &new) {
            // The new set is in force; a directory still marked says to keep both sets.
            if dir.join("INCOMPLETE").exists() {
                let marker = std::fs::read_to_string(dir.join("INCOMPLETE")).unwrap();
                assert!(marker.contains("keep both sets"), "{marker}");
            }
            current = new;
            moved += 1;
        } else {
            assert!(opens(&hsm, &current), "k{i}: neither the old set nor the new one opens the user role");
            kept += 1;
        }
    }
    assert!(opens(&hsm, &current));
    eprintln!("30 killed re-deals: {moved} left the new set in force, {kept} the old one");
}

#[test]
fn quorum_reset_pin_on_an_activation_token_deals_a_new_set_instead_of_taking_a_pin() {
    let hsm = SoftHsm::new();
    let c = common::two_quorum_ceremony(&hsm);
    let so = ["--share".to_string(), share(&c, "", 1, 3), "--share".to_string(), share(&c, "", 3, 3)];
    let act = [share(&c, "activation-", 1, 3), share(&c, "activation-", 2, 3)];
    // A PIN a person chose is refused, before the SO logs in; the token is unchanged.
    let pin_file = hsm.write("chosen", "99999999\n");
    let line = fails_with(hsm.cmd().arg("quorum-reset-pin").args(&so).arg("--new-pin-file").arg(&pin_file), 2);
    assert!(line.contains("never takes a PIN a person chose") && line.contains("quorum-redeal --role user"), "{line}");
    let line = fails_with(hsm.cmd().env("HSM_DEMO_NEW_PIN", "99999999").arg("quorum-reset-pin").args(&so), 2);
    assert!(line.contains("--activation-quorum M/N"), "{line}");
    ok(with_shares(&hsm, &act).args(["sign", "--label", "root-ca-key", "--data", "x"]));
    // The activation shares lost: the SO quorum deals a new 2-of-4 set.
    let out = ok(hsm.cmd().arg("quorum-reset-pin").args(&so).args(["--activation-quorum", "2/4", "--out", "rs"]));
    let rs = hsm.path("rs");
    let new_set = recorded(&rs, "share set id: ");
    assert!(out.contains(&format!("share set {new_set} (2-of-4) in force")), "{out}");
    ok(hsm.openssl().current_dir(&rs).args(["dgst", "-sha256", "-verify", "transcript-signer.pub.pem", "-signature", "transcript.sig", "transcript.txt"]));
    ok(with_shares(&hsm, &[share(&rs, "activation-", 3, 4), share(&rs, "activation-", 4, 4)]).args(["sign", "--label", "root-ca-key", "--data", "x"]));
    let line = fails_with(with_shares(&hsm, &act).args(["sign", "--label", "root-ca-key", "--data", "x"]), 2);
    assert!(line.contains(&format!("by set {new_set}")), "{line}");
    // The token's own record names the new set, for any host (read without a PIN).
    let data = ok(hsm.pkcs11_tool().args(["--token-label", "test-hsm", "--read-object", "--type", "data", "--label", "hsm-demo activation quorum"]));
    assert_eq!(data.trim(), new_set);
}

/// A user re-deal through the fault module in `mode`: killed by a signal; the new
/// directory kept, marked, and saying to keep both sets. Returns that directory.
fn killed_user_redeal(hsm: &SoftHsm, mode: &str, old: &[String], out: &str) -> PathBuf {
    let module = hsm.fault_module(mode);
    let mut cmd = with_shares(hsm, &[]);
    cmd.args(["--module", module.to_str().unwrap(), "quorum-redeal", "--role", "user", "--out", out]);
    for f in old {
        cmd.args(["--share", f]);
    }
    let run = cmd.assert().get_output().clone();
    assert_eq!(run.status.code(), None, "{mode}: killed by a signal");
    let dir = hsm.path(out);
    let marker = std::fs::read_to_string(dir.join("INCOMPLETE")).unwrap();
    assert!(marker.contains("keep both sets"), "{mode}: {marker}");
    dir
}

#[test]
fn a_re_deal_killed_at_each_step_leaves_the_set_in_force_and_a_recovery_line() {
    let hsm = SoftHsm::new();
    let c = common::two_quorum_ceremony(&hsm);
    let old = vec![share(&c, "activation-", 1, 3), share(&c, "activation-", 2, 3)];
    // Killed as C_SetPIN is called: the old set still opens; the new one does not.
    let d = killed_user_redeal(&hsm, "kill-before-setpin", &old, "k1");
    assert!(opens(&hsm, &old));
    assert!(!opens(&hsm, &[share(&d, "activation-", 1, 3), share(&d, "activation-", 2, 3)]));
    // Killed right after C_SetPIN: the new shares, durable before it, open the role.
    let d = killed_user_redeal(&hsm, "kill-after-setpin", &old, "k2");
    let new = vec![share(&d, "activation-", 2, 3), share(&d, "activation-", 3, 3)];
    assert!(opens(&hsm, &new));
    // Killed as the transcript is signed (after the proof): the new set's successor
    // opens, and the set it replaced is retired by name.
    let d = killed_user_redeal(&hsm, "kill-on-sign", &new, "k3");
    assert!(!d.join("transcript.sig").exists());
    let newer = vec![share(&d, "activation-", 1, 3), share(&d, "activation-", 3, 3)];
    assert!(opens(&hsm, &newer));
    let line = fails_with(with_shares(&hsm, &new).arg("list-keys"), 2);
    assert!(line.contains("replaced on"), "{line}");
    // The SO re-deal killed right after its child's C_SetPIN: the new SO shares open it.
    let module = hsm.fault_module("kill-parent-after-setpin");
    let run = with_shares(&hsm, &newer)
        .args(["--module", module.to_str().unwrap(), "quorum-redeal", "--role", "so", "--out", "s1"])
        .args(["--share", &share(&c, "", 1, 3), "--share", &share(&c, "", 2, 3)])
        .assert()
        .get_output()
        .clone();
    assert_eq!(run.status.code(), None);
    let s1 = hsm.path("s1");
    ok(with_shares(&hsm, &newer).args(["quorum-redeal", "--role", "so", "--out", "s2"]).args(["--share", &share(&s1, "", 1, 3), "--share", &share(&s1, "", 3, 3)]));
}
