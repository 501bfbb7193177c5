//! The activation quorum over the user PIN (next to the SO quorum),
//! `--pin-share` for every command that logs in, `--dry-run`, and `verify-ceremony`,
//! against real SoftHSM2 tokens and the openssl CLI.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, ok, spy_calls, succeeds, Command, SoftHsm, SO_PIN, SPY, USER_PIN};

/// A ceremony with both quorums (SO 3-of-5, activation 2-of-3) into ./c.
fn both_quorums(hsm: &SoftHsm) -> PathBuf {
    let out = ok(hsm
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["key-ceremony", "--activation-quorum", "2/3", "--out", "c"]));
    assert!(out.contains("[Step 3] Quorum created: SO PIN replaced"), "{out}");
    assert!(out.contains("[Step 3b] Activation quorum created: user PIN replaced"), "{out}");
    assert!(out.contains("final check: a fresh process found the old user PIN refused"), "{out}");
    hsm.path("c")
}

/// hsm-demo with the activation shares `indexes` and no user PIN anywhere else.
fn with_shares(hsm: &SoftHsm, dir: &Path, indexes: &[u8]) -> Command {
    let mut cmd = hsm.cmd();
    cmd.env_remove("HSM_DEMO_PIN");
    for i in indexes {
        cmd.arg("--pin-share")
            .arg(dir.join(format!("activation-share-{i}-of-3.json")));
    }
    cmd
}

fn sign_with_spy(cmd: &mut Command, log: &Path) -> String {
    fails_with(
        cmd.env("PKCS11SPY", common::softhsm_module())
            .env("PKCS11SPY_OUTPUT", log)
            .args(["--module", SPY, "sign", "--label", "root-ca-key", "--data", "x"]),
        2,
    )
}

#[test]
fn both_quorums_then_m_activation_shares_sign_and_nothing_less_does() {
    let hsm = SoftHsm::new();
    let dir = both_quorums(&hsm);
    for i in 1..=3 {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(format!("activation-share-{i}-of-3.json")))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
    let transcript = std::fs::read_to_string(dir.join("transcript.txt")).unwrap();
    assert!(transcript.contains("quorum:   3-of-5 over the SO PIN"), "{transcript}");
    assert!(transcript.contains("activation: 2-of-3 over the user PIN"), "{transcript}");

    // The old user PIN is refused now.
    let line = fails_with(hsm.cmd().args(["list-keys"]), 3);
    assert!(line.contains("user PIN incorrect"), "{line}");
    // Any two activation shares sign, and openssl checks the signature.
    let data = hsm.write("data.txt", "sub-CA request");
    let pubkey = hsm.write("root.pem", std::fs::read(dir.join("root-ca.pub.pem")).unwrap());
    for pair in [[1, 2], [3, 1]] {
        let out = ok(with_shares(&hsm, &dir, &pair).args([
            "sign", "--label", "root-ca-key", "--in", "data.txt",
        ]));
        let sig = hsm.write("s.der", hex::decode(common::signature_hex(&out)).unwrap());
        hsm.openssl_verifies(&pubkey, &sig, &data);
    }
    // generate-key and list-keys log in the same way.
    succeeds(with_shares(&hsm, &dir, &[2, 3]).args(["generate-key", "--label", "sub-ca-key"]));

    // One share, a share twice, SO shares, an altered share: refused, and no C_Login.
    let log = hsm.path("spy.log");
    let line = sign_with_spy(&mut with_shares(&hsm, &dir, &[2]), &log);
    assert!(line.contains("1 distinct share(s) given; this quorum needs 2 of 3"), "{line}");
    let line = sign_with_spy(&mut with_shares(&hsm, &dir, &[2, 2]), &log);
    assert!(line.contains("share 2 was given twice"), "{line}");
    let mut so_shares = hsm.cmd();
    so_shares
        .env_remove("HSM_DEMO_PIN")
        .arg("--pin-share")
        .arg(dir.join("share-1-of-5.json"))
        .arg("--pin-share")
        .arg(dir.join("share-2-of-5.json"));
    let line = sign_with_spy(&mut so_shares, &log);
    assert!(line.contains("holds a share of the SO PIN"), "{line}");
    let altered = hsm.path("altered.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("activation-share-3-of-3.json")).unwrap())
            .unwrap();
    let mut bytes = hex::decode(json["share"].as_str().unwrap()).unwrap();
    bytes[4] ^= 0x01;
    json["share"] = hex::encode(bytes).into();
    std::fs::write(&altered, json.to_string()).unwrap();
    let mut cmd = with_shares(&hsm, &dir, &[1]);
    cmd.arg("--pin-share").arg(&altered);
    let line = sign_with_spy(&mut cmd, &log);
    assert!(line.contains("altered.json (share 3) is corrupted or altered"), "{line}");
    assert_eq!(spy_calls(&log, "C_Login"), 0, "no login with a wrong value");
}

#[test]
fn activation_shares_of_another_token_are_refused_before_login() {
    let first = SoftHsm::new();
    let dir = both_quorums(&first);
    let other = SoftHsm::new();
    let log = other.path("spy.log");
    let line = sign_with_spy(&mut with_shares(&other, &dir, &[1, 2]), &log);
    assert!(line.contains("belong to token"), "{line}");
    assert_eq!(spy_calls(&log, "C_Login"), 0);
}

/// Every file under `dir`, with its bytes; for SoftHSM's token.object, without its
/// leading 8-byte update counter, which SoftHSM bumps on every login (the dry run logs
/// in to check the PINs; docs/platform.md, "One file store, several processes").
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let mut bytes = std::fs::read(&p).unwrap();
                if p.file_name().unwrap() == "token.object" {
                    bytes.drain(..8);
                }
                out.push((p.clone(), bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_dry_run_checks_everything_prints_the_script_and_changes_nothing() {
    let hsm = SoftHsm::new();
    let tokens = hsm.path("tokens");
    let before = snapshot(&tokens);
    let slots_before = hsm.run_ok(&["list-slots", "--json"]);
    let names_before = std::fs::read_dir(hsm.dir.path()).unwrap().count();
    let out = ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args([
        "key-ceremony",
        "--activation-quorum",
        "2/3",
        "--out",
        "c",
        "--dry-run",
    ]));
    for want in [
        "DRY RUN (nothing was created or changed)",
        "the SO PIN opens the SO role",
        "[Step 1] Key pair generated: label=root-ca-key, algo=EC/P-256",
        "custodian 5 takes share-5-of-5.json",
        "custodian 3 takes activation-share-3-of-3.json",
        "hsm-demo verify-ceremony c",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    assert_eq!(snapshot(&tokens), before, "the token store is byte for byte the same");
    assert_eq!(hsm.run_ok(&["list-slots", "--json"]), slots_before);
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 0);
    assert!(!hsm.path("c").exists());
    // Only the lock directory under HOME may have appeared.
    let names_after = std::fs::read_dir(hsm.dir.path()).unwrap().count();
    assert!(names_after <= names_before + 1);
    assert!(hsm.pkcs11_tool_so_init_pin(SO_PIN, USER_PIN).status.success());

    // A check that fails exits as the real run would.
    let line = fails_with(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", "87654321")
            .args(["key-ceremony", "--out", "c", "--dry-run"]),
        3,
    );
    assert!(line.contains("SO PIN incorrect"), "{line}");
    std::fs::create_dir(hsm.path("taken")).unwrap();
    fails_with(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["key-ceremony", "--out", "taken", "--dry-run"]),
        2,
    );
}

#[test]
fn verify_ceremony_passes_a_fresh_ceremony_and_names_each_file_that_does_not_hold() {
    let hsm = SoftHsm::new();
    let dir = both_quorums(&hsm);
    // No token, no PIN, no module at all.
    let verify = |dir: &Path| {
        let mut cmd = hsm.bare_cmd();
        cmd.args(["--module", "/nonexistent.so", "verify-ceremony"]).arg(dir);
        cmd
    };
    let out = ok(&mut verify(&dir));
    assert!(out.contains("Ceremony verified:"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // A later file is reported, not an error.
    std::fs::write(dir.join("index.txt"), "").unwrap();
    let out = ok(&mut verify(&dir));
    assert!(out.contains("note  index.txt: not listed in the transcript"), "{out}");

    let copy = |name: &str| {
        let to = hsm.path(name);
        ok(hsm.tool("cp").args(["-a"]).arg(&dir).arg(&to));
        to
    };
    let failed = |d: &Path| fails_with(&mut verify(d), 1);

    let changed = copy("changed");
    let text = std::fs::read_to_string(changed.join("transcript.txt")).unwrap();
    std::fs::write(changed.join("transcript.txt"), text.replace("3650 days", "7300 days")).unwrap();
    assert!(failed(&changed).contains("failed: transcript.txt"), "changed transcript");

    let unsigned = copy("unsigned");
    std::fs::remove_file(unsigned.join("transcript.sig")).unwrap();
    assert!(failed(&unsigned).contains("transcript.sig"), "missing signature");

    let swapped = copy("swapped");
    let other = SoftHsm::new();
    succeeds(
        other
            .cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["key-ceremony", "--no-quorum", "--out", "o"]),
    );
    std::fs::copy(other.path("o/root-ca.pem"), swapped.join("root-ca.pem")).unwrap();
    let line = failed(&swapped);
    assert!(line.contains("root-ca.pem"), "swapped root: {line}");

    let altered = copy("altered");
    let share = altered.join("share-2-of-5.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&share).unwrap()).unwrap();
    let mut bytes = hex::decode(json["share"].as_str().unwrap()).unwrap();
    bytes[5] ^= 0x80;
    json["share"] = hex::encode(bytes).into();
    std::fs::write(&share, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let line = failed(&altered);
    assert!(line.contains("share-2-of-5.json") && !line.contains("share-1-of-5"), "{line}");
}

#[test]
fn verify_ceremony_names_an_incomplete_ceremony() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("kill-after-setpin");
    fails_with(
        hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args([
            "--module",
            module.to_str().unwrap(),
            "key-ceremony",
            "--out",
            "c",
        ]),
        4,
    );
    let mut cmd = hsm.bare_cmd();
    cmd.args(["verify-ceremony", "c"]);
    let out = cmd.assert().code(1).get_output().clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  INCOMPLETE: the ceremony did not complete"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("INCOMPLETE"));
}

#[test]
fn the_ceremony_killed_right_after_the_user_pin_changed_leaves_working_activation_shares() {
    let hsm = SoftHsm::new();
    // With no SO quorum, the first C_SetPIN is the activation step's, in the
    // ceremony's own process: the fault module kills it right after.
    let module = hsm.fault_module("kill-after-setpin");
    let out = hsm
        .cmd()
        .args(["--module", module.to_str().unwrap(), "key-ceremony", "--no-quorum"])
        .args(["--activation-quorum", "2/3", "--out", "c"])
        .assert()
        .get_output()
        .clone();
    assert_eq!(out.status.code(), None, "killed");
    let dir = hsm.path("c");
    assert!(dir.join("INCOMPLETE").is_file());
    fails_with(hsm.cmd().args(["list-keys"]), 3);
    succeeds(with_shares(&hsm, &dir, &[1, 3]).args([
        "sign", "--label", "root-ca-key", "--data", "x",
    ]));
}

#[test]
fn fifos_symlinks_and_shares_readable_by_others_never_hang_or_pass_unsaid() {
    let hsm = SoftHsm::new();
    let dir = both_quorums(&hsm);
    let mkfifo = |p: &Path| assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success());
    // A FIFO given as a share: refused at once, nothing sent to the token.
    mkfifo(&hsm.path("share.fifo"));
    let mut cmd = hsm.cmd();
    cmd.timeout(std::time::Duration::from_secs(20));
    cmd.env_remove("HSM_DEMO_PIN").args(["--pin-share", "share.fifo", "--pin-share", "c/activation-share-1-of-3.json", "list-keys"]);
    let line = fails_with(&mut cmd, 2);
    assert!(line.contains("share.fifo") && line.contains("not a regular file"), "{line}");
    // In the ceremony directory: a share file replaced by a FIFO, the public key by a
    // symbolic link to a copy outside it. Both are findings; nothing waits.
    let copy = hsm.path("linked");
    ok(hsm.tool("cp").args(["-a"]).arg(&dir).arg(&copy));
    std::fs::copy(copy.join("root-ca.pub.pem"), hsm.path("outside.pem")).unwrap();
    std::fs::remove_file(copy.join("root-ca.pub.pem")).unwrap();
    std::os::unix::fs::symlink(hsm.path("outside.pem"), copy.join("root-ca.pub.pem")).unwrap();
    std::fs::remove_file(copy.join("share-2-of-5.json")).unwrap();
    mkfifo(&copy.join("share-2-of-5.json"));
    let mut cmd = hsm.bare_cmd();
    cmd.timeout(std::time::Duration::from_secs(20)).args(["verify-ceremony", "linked"]);
    let out = cmd.assert().code(1).get_output().clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("root-ca.pub.pem: is a symbolic link (to "), "{stdout}");
    assert!(stdout.contains("share-2-of-5.json") && stdout.contains("not a regular file"), "{stdout}");
    // A share file others can read is used, with a word.
    let share = dir.join("activation-share-2-of-3.json");
    std::fs::set_permissions(&share, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = hsm
        .cmd()
        .env_remove("HSM_DEMO_PIN")
        .args(["--pin-share", "c/activation-share-1-of-3.json", "--pin-share", "c/activation-share-2-of-3.json", "list-keys"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("activation-share-2-of-3.json can be read by other users of this machine"), "{err}");
}
