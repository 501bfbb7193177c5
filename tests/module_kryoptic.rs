//! The same binary on kryoptic (the pkcs11-provider authors' Rust soft token), by
//! module path only: the core sequence of issue 12 on a token store the test makes.

mod common;

use common::{fails_with, ok, Kryoptic, KRY_SO_PIN, KRY_USER_PIN};

#[test]
fn list_slots_shows_the_token_and_the_uninitialized_slot_with_its_error() {
    let kry = Kryoptic::new();
    let text = ok(kry.cmd().arg("list-slots"));
    assert!(text.contains("(Kryoptic, Kryoptic PKCS11 Module"), "{text}");
    assert!(text.contains("label:        kry"), "{text}");
    assert!(text.contains("CKR_TOKEN_NOT_INITIALIZED (0x208, PKCS#11 3.x)"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(kry.cmd().args(["list-slots", "--json"]))).unwrap();
    let token = common::initialized_token(&v);
    assert_eq!(token["label"], "kry");
    assert_eq!(token["can_generate_ec"], true);
    let algorithms: Vec<&str> = token["algorithms"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(algorithms.contains(&"ec-p256") && algorithms.contains(&"rsa-2048"), "{algorithms:?}");
    assert!(!algorithms.contains(&"ed25519"), "the minimal build has no EdDSA: {algorithms:?}");
}

#[test]
fn keys_sign_and_verify_on_kryoptic_and_openssl_agrees() {
    let kry = Kryoptic::new();
    for (label, algo, flag) in [("ec", "ec-p256", "-sha256"), ("p384", "ec-p384", "-sha384"), ("rsa", "rsa-2048", "-sha256")] {
        let out = ok(kry.cmd().args(["generate-key", "--label", label, "--algo", algo]));
        assert!(out.contains("custody: sensitive, never extractable"), "{out}");
        let pem = format!("{label}.pem");
        ok(kry.cmd().args(["export-pubkey", "--label", label, "--out", &pem]));
        std::fs::write(kry.path("data"), "on kryoptic").unwrap();
        let sig_hex = common::signature_hex(&ok(kry.cmd().args(["sign", "--label", label, "--in", "data"])));
        std::fs::write(kry.path("sig"), hex::decode(&sig_hex).unwrap()).unwrap();
        let verified = ok(kry.tool("openssl").args(["dgst", flag, "-verify", &pem, "-signature", "sig", "data"]));
        assert_eq!(verified.trim(), "Verified OK", "{algo}");
        ok(kry.cmd().args(["verify", "--label", label, "--in", "data", "--sig", &sig_hex]));
        kry.cmd()
            .args(["verify", "--label", label, "--data", "tampered", "--sig", &sig_hex])
            .assert()
            .code(1);
    }
    let keys: serde_json::Value = serde_json::from_str(&ok(kry.cmd().args(["list-keys", "--json"]))).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 6);
    let line = fails_with(kry.cmd().args(["generate-key", "--label", "e", "--algo", "ed25519"]), 3);
    assert!(line.contains("lacks CKM_EC_EDWARDS_KEY_PAIR_GEN"), "{line}");
}

#[test]
fn ceremonies_with_and_without_a_quorum_and_the_quorum_resets_the_user_pin() {
    let kry = Kryoptic::new();
    let out = ok(kry.cmd().env("HSM_DEMO_SO_PIN", KRY_SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "plain", "--label", "root-a"]));
    assert!(out.contains("[Step 4] Ceremony complete."), "{out}");
    // ulMaxPinLen is 0 on kryoptic (no limit): the quorum secret is the full 32 bytes.
    let out = ok(kry.cmd().env("HSM_DEMO_SO_PIN", KRY_SO_PIN).args(["key-ceremony", "--out", "c", "--label", "root-b"]));
    assert!(out.contains("a fresh 32-byte secret"), "{out}");
    assert!(out.contains("final check: a fresh process found the old SO PIN refused"), "{out}");
    ok(kry.cmd().args(["verify-ceremony", "c"]));
    ok(kry.tool("openssl").args(["verify", "-CAfile", "c/root-ca.pem", "c/root-ca.pem"]));
    // The old SO PIN no longer works; three shares set a new user PIN.
    let line = fails_with(
        kry.cmd().env("HSM_DEMO_SO_PIN", KRY_SO_PIN).args(["key-ceremony", "--out", "again", "--label", "root-c"]),
        3,
    );
    assert!(line.contains("SO PIN incorrect"), "{line}");
    common::quorum_resets_user_pin(|| kry.cmd(), "kry-new-user-pin", "root-b");
    assert_ne!(KRY_USER_PIN, "kry-new-user-pin");
}

#[test]
fn a_six_character_pin_another_tool_set_opens_the_token() {
    // kryoptic 1.5.4 reports ulMinPinLen 8 but takes C_InitPIN and C_Login with a
    // 6-character PIN: set by pkcs11-tool, it must work for hsm-demo's login too (the
    // lower bound is for setting a PIN, not for sending one that works).
    let kry = Kryoptic::new();
    let module = common::kryoptic_module();
    ok(kry.tool("pkcs11-tool").args([
        "--module", module.to_str().unwrap(), "--token-label", "kry", "--login", "--login-type", "so",
        "--so-pin", KRY_SO_PIN, "--init-pin", "--new-pin", "654321",
    ]));
    ok(kry.cmd().env("HSM_DEMO_PIN", "654321").args(["generate-key", "--label", "short"]));
    let out = ok(kry.cmd().env("HSM_DEMO_PIN", "654321").args(["sign", "--label", "short", "--data", "x"]));
    assert!(out.starts_with("Signature: "), "{out}");
    // Setting one is still held to the range the token reports: init-token refuses it.
    let line = fails_with(kry.cmd().env("HSM_DEMO_SO_PIN", KRY_SO_PIN).env("HSM_DEMO_PIN", "654321").args(["init-token", "--label", "kry2"]), 2);
    assert!(line.contains("is 6 characters"), "{line}");
}

#[test]
fn a_root_backed_up_on_softhsm_is_restored_onto_kryoptic_and_signs_a_subordinate() {
    // Another vendor's token: kryoptic names RFC 5649 CKM_AES_KEY_WRAP_KWP and has no
    // CKA_TRUSTED; the restore unwraps with an unwrap-only session key through it.
    let soft = common::SoftHsm::new();
    ok(soft.cmd().env("HSM_DEMO_SO_PIN", common::SO_PIN).args(["key-ceremony", "--backup-quorum", "3/5", "--out", "c", "--label", "root"]));
    let kry = Kryoptic::new();
    std::fs::create_dir(kry.path("c")).unwrap();
    for f in ["root-ca.pem", "root-key.wrapped", "backup-share-2-of-5.json", "backup-share-4-of-5.json", "backup-share-5-of-5.json"] {
        std::fs::copy(soft.path("c").join(f), kry.path("c").join(f)).unwrap();
    }
    let out = ok(kry.cmd().args([
        "key-restore", "--wrapped", "c/root-key.wrapped", "--share", "c/backup-share-2-of-5.json", "--share", "c/backup-share-4-of-5.json",
        "--share", "c/backup-share-5-of-5.json",
    ]));
    assert!(out.contains("Restored key 'root' (ec-p256) into token 'kry'"), "{out}");
    assert!(out.contains("verifies under the original public key"), "{out}");
    ok(kry.cmd().args(["ca-init", "--ca", "restored", "--cert", "c/root-ca.pem", "--label", "root"]));
    ok(kry.cmd().args(["generate-key", "--label", "sub"]));
    ok(kry.cmd().args(["csr", "--label", "sub", "--subject", "/C=US/O=Example/CN=Issuing CA on kryoptic", "--out", "sub.csr"]));
    ok(kry.cmd().args(["issue", "--ca", "restored", "--csr", "sub.csr", "--profile", "subordinate-ca", "--out", "sub.pem"]));
    let v = ok(kry.tool("openssl").args(["verify", "-CAfile", "c/root-ca.pem", "sub.pem"]));
    assert_eq!(v.trim(), "sub.pem: OK");
    // A second restore under the same label is refused and changes nothing.
    let before = ok(kry.cmd().args(["list-keys", "--json"]));
    let line = fails_with(
        kry.cmd().args(["key-restore", "--wrapped", "c/root-key.wrapped", "--share", "c/backup-share-2-of-5.json", "--share", "c/backup-share-4-of-5.json", "--share", "c/backup-share-5-of-5.json"]),
        2,
    );
    assert!(line.contains("already holds an object with label 'root'"), "{line}");
    assert_eq!(ok(kry.cmd().args(["list-keys", "--json"])), before);
}

/// A root's quorum life on kryoptic: both quorums, the activation quorum re-dealt to
/// 2-of-4, the SO quorum re-dealt, the activation shares replaced by the SO quorum
/// (the token's own activation record read back), and the last set signs.
#[test]
fn quorums_are_re_dealt_and_reset_on_kryoptic() {
    let kry = Kryoptic::new();
    ok(kry.cmd().env("HSM_DEMO_SO_PIN", KRY_SO_PIN).args(["key-ceremony", "--quorum", "2/3", "--activation-quorum", "2/3", "--out", "c"]));
    let p = |f: &str| kry.path(f).display().to_string();
    let bare = || {
        let mut cmd = kry.cmd();
        cmd.env_remove("HSM_DEMO_PIN");
        cmd
    };
    ok(bare().args(["quorum-redeal", "--role", "user", "--share", &p("c/activation-share-1-of-3.json"), "--share", &p("c/activation-share-2-of-3.json"), "--quorum", "2/4", "--out", "r"]));
    ok(bare()
        .args(["--pin-share", &p("r/activation-share-1-of-4.json"), "--pin-share", &p("r/activation-share-4-of-4.json")])
        .args(["quorum-redeal", "--role", "so", "--share", &p("c/share-1-of-3.json"), "--share", &p("c/share-3-of-3.json"), "--out", "s"]));
    let line = fails_with(bare().env("HSM_DEMO_NEW_PIN", KRY_USER_PIN).args(["quorum-reset-pin", "--share", &p("s/share-1-of-3.json"), "--share", &p("s/share-2-of-3.json")]), 2);
    assert!(line.contains("never takes a PIN a person chose"), "{line}");
    let out = ok(bare().args(["quorum-reset-pin", "--share", &p("s/share-1-of-3.json"), "--share", &p("s/share-2-of-3.json"), "--activation-quorum", "3/5", "--out", "rs"]));
    assert!(out.contains("(3-of-5) in force"), "{out}");
    let signed = ok(bare()
        .args(["--pin-share", &p("rs/activation-share-1-of-5.json"), "--pin-share", &p("rs/activation-share-2-of-5.json"), "--pin-share", &p("rs/activation-share-5-of-5.json")])
        .args(["sign", "--label", "root-ca-key", "--data", "k"]));
    assert!(signed.contains("Signature:"), "{signed}");
    let line = fails_with(bare().args(["--pin-share", &p("r/activation-share-1-of-4.json"), "--pin-share", &p("r/activation-share-2-of-4.json"), "list-keys"]), 2);
    assert!(line.contains("replaced on"), "{line}");
}
