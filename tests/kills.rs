//! kill -9 at random points of `sign`, `issue` and `key-ceremony`, several hundred
//! times: after every kill the next hsm-demo command finds the token (putting its
//! SoftHSM token file back from its copy when the kill cut it), the key signs, the CA
//! directory works, and the SO role opens with either the previous SO PIN or the
//! shares of the ceremony that was killed, as the repair line says.

mod common;

use std::path::Path;

use common::{kill_after, ok, recombine, SoftHsm, SO_PIN, USER_PIN};

/// A small deterministic generator (no dependency): the same kill points every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The next command after a kill: list-keys, which must find the token and key `k`;
/// returns its stderr (the repair line, if any).
fn token_still_there(hsm: &SoftHsm) -> String {
    let out = hsm.cmd().args(["list-keys", "--json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the token is gone: {stderr}");
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(keys["keys"].as_array().unwrap().iter().any(|k| k["label"] == "k"), "key k is gone: {keys}");
    stderr
}

fn so_pin_opens(hsm: &SoftHsm, pin: &str) -> bool {
    hsm.pkcs11_tool_so_init_pin(pin, USER_PIN).status.success()
}

/// The CA directory's log verifies after a kill: an open group is noted, a cut last
/// line named (both left for the next command to close); before the first command on
/// the directory there is no log yet.
fn log_verifies_after_a_kill(hsm: &SoftHsm) {
    let v = hsm.cmd().args(["verify-audit", "root"]).output().unwrap();
    let err = String::from_utf8_lossy(&v.stderr);
    let not_yet = !hsm.path("root/audit.log").exists() && err.contains("no audit.log");
    assert!(v.status.success() || err.contains("without a newline") || not_yet, "{err}");
}

#[test]
fn hundreds_of_kills_leave_every_token_key_and_ca_directory_usable() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["csr", "--label", "k", "--subject", "/CN=www.example.com", "--san", "DNS:www.example.com", "--out", "www.csr"]));
    let mut rng = Lcg(7);
    let mut repairs = 0;
    for _ in 0..160 {
        kill_after(hsm.spawnable(SO_PIN, &["sign", "--label", "k", "--data", "x"]), rng.below(40_000));
        repairs += usize::from(token_still_there(&hsm).contains("was put back"));
    }
    for _ in 0..100 {
        kill_after(hsm.spawnable(SO_PIN, &["issue", "--ca", "root", "--csr", "www.csr", "--profile", "tls-server"]), rng.below(60_000));
        log_verifies_after_a_kill(&hsm);
        repairs += usize::from(token_still_there(&hsm).contains("was put back"));
    }
    // CRLs killed at random points: the log verifies after each, the numbers only rise.
    for _ in 0..40 {
        kill_after(hsm.spawnable(SO_PIN, &["crl", "--ca", "root"]), rng.below(60_000));
        log_verifies_after_a_kill(&hsm);
    }
    // The key signs, the CA directory issues and lists (interrupted issuances abandoned).
    ok(hsm.cmd().args(["sign", "--label", "k", "--data", "after"]));
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "www.csr", "--profile", "tls-server", "--out", "www.pem"]));
    ok(hsm.tool("openssl").args(["verify", "-CAfile", "root/root-ca.pem", "www.pem"]));
    ok(hsm.cmd().args(["list-issued", "--ca", "root"]));
    let out = ok(hsm.cmd().args(["verify-audit", "root"]));
    assert!(!out.contains("has not finished"), "{out}");
    let log = std::fs::read_to_string(hsm.path("root/audit.log")).unwrap();
    let count = |t: &str| log.matches(&format!("\"type\":\"{t}\"")).count();
    eprintln!(
        "300 kills of sign, issue and crl: {repairs} token file(s) put back; audit.log: {} issues committed, {} abandoned, {} checkpoints; verifies",
        log.matches("\"outputs\":{\"cert_sha256\"").count(),
        count("abandoned"),
        count("checkpoint")
    );
}

#[test]
fn killed_ceremonies_leave_the_so_role_open_to_the_previous_pin_or_the_new_shares() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let mut rng = Lcg(11);
    let mut so_pin = SO_PIN.to_string();
    let (mut repairs, mut by_shares) = (0, 0);
    for i in 0..40 {
        let out = format!("c{i}");
        let label = format!("root-{i}");
        kill_after(hsm.spawnable(&so_pin, &["key-ceremony", "--out", &out, "--label", &label]), rng.below(900_000));
        let note = token_still_there(&hsm);
        repairs += usize::from(note.contains("was put back"));
        if note.contains("the PIN in force is the previous one") {
            assert!(so_pin_opens(&hsm, &so_pin), "the repair said the previous SO PIN opens, and it does not: {note}");
            continue;
        }
        if so_pin_opens(&hsm, &so_pin) {
            continue;
        }
        // Not the previous PIN: then the killed ceremony's shares, all of them kept.
        let dir = hsm.path(&out);
        assert!(
            (1..=5).all(|s| Path::new(&dir).join(format!("share-{s}-of-5.json")).is_file()),
            "ceremony {i}: the previous SO PIN is refused and its shares are not all there ({note})"
        );
        let new_pin = recombine(&dir, &[1, 3, 5]);
        assert!(so_pin_opens(&hsm, &new_pin), "ceremony {i}: neither the previous SO PIN nor the shares open the SO role");
        so_pin = new_pin;
        by_shares += 1;
    }
    // The user PIN never moved; the key signs.
    ok(hsm.cmd().args(["sign", "--label", "k", "--data", "after"]));
    eprintln!("40 killed ceremonies: {repairs} token file(s) put back, {by_shares} left the SO PIN with the shares");
}

#[test]
fn a_cut_token_file_without_a_copy_is_named_and_never_initialised_over() {
    // A token made by softhsm2-util alone: hsm-demo has never seen it, so holds no copy.
    let hsm = SoftHsm::empty();
    hsm.add_token("other");
    let file = std::fs::read_dir(hsm.path("tokens")).unwrap().next().unwrap().unwrap().path().join("token.object");
    std::fs::write(&file, b"").unwrap();
    let out = hsm.cmd().arg("list-keys").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("is empty, and hsm-demo holds no copy of it"), "{stderr}");
    assert!(stderr.contains("do not initialise a new token over them") && !stderr.contains("init-token"), "{stderr}");
}

#[test]
fn a_killed_backup_ceremony_never_leaves_a_wrapped_key_without_its_shares() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let mut rng = Lcg(13);
    for i in 0..20 {
        let out = format!("b{i}");
        kill_after(hsm.spawnable(SO_PIN, &["key-ceremony", "--no-quorum", "--backup-quorum", "3/5", "--out", &out, "--label", &format!("broot-{i}")]), rng.below(700_000));
        token_still_there(&hsm);
        let dir = hsm.path(&out);
        if dir.join("root-key.wrapped").exists() {
            assert!((1..=5).all(|s| dir.join(format!("backup-share-{s}-of-5.json")).is_file()), "b{i}: a wrapped key without its shares");
        }
        // (A kill between the wrap key's creation and its destruction can leave that
        // public, labelled object; its value is what the backup shares beside it hold.)
    }
    ok(hsm.cmd().args(["sign", "--label", "k", "--data", "after"]));
}
