//! What other PKCS#11 modules report, read defensively: kryoptic's 3.x return code on
//! an uninitialized slot and its ulMaxPinLen of 0, tpm2-pkcs11's NUL-padded strings,
//! CloudHSM's missing PIN functions.
//! The fault module (tests/fault) makes SoftHSM2 behave that way.

mod common;

use common::{fails_with, ok, SoftHsm, SO_PIN, USER_PIN};

#[test]
fn a_slot_that_cannot_be_read_is_shown_with_its_error_and_the_listing_goes_on() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("kryoptic-uninit");
    let module = module.to_str().unwrap();
    let text = ok(hsm.cmd().args(["--module", module, "list-slots"]));
    assert!(text.contains("label:        test-hsm"), "{text}");
    assert!(
        text.contains("error:        list mechanisms: C_GetMechanismList returned CKR_TOKEN_NOT_INITIALIZED (0x208, PKCS#11 3.x)"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(hsm.cmd().args(["--module", module, "list-slots", "--json"]))).unwrap();
    let errors: Vec<&str> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["error"].as_str())
        .collect();
    assert_eq!(errors.len(), 1, "{v}");
    // init-token still finds the free slot, and the new token is listed.
    let mut init = hsm.cmd();
    init.env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["--module", module, "init-token", "--label", "second"]);
    ok(&mut init);
    let text = ok(hsm.cmd().args(["--module", module, "list-slots"]));
    assert!(text.contains("label:        second"), "{text}");
}

#[test]
fn an_unlimited_max_pin_length_takes_a_full_quorum_secret() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("kryoptic-uninit");
    let out = ok(hsm
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["--module", module.to_str().unwrap(), "key-ceremony", "--out", "c", "--dry-run"]));
    assert!(out.contains("PIN length for quorum secrets: at least 4 characters, no upper limit"), "{out}");
    let out = ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args([
        "--module",
        module.to_str().unwrap(),
        "key-ceremony",
        "--out",
        "c",
    ]));
    assert!(out.contains("a fresh 32-byte secret"), "{out}");
    // A PIN of any length passes the length check there.
    let long = "7".repeat(300);
    let line = fails_with(
        hsm.cmd()
            .env("HSM_DEMO_PIN", &long)
            .args(["--module", module.to_str().unwrap(), "list-keys"]),
        3,
    );
    assert!(line.contains("user PIN incorrect"), "sent to the token, refused there: {line}");
}

#[test]
fn nul_padded_token_strings_never_reach_text_json_or_uris() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("tpm-nul-padding");
    let module = module.to_str().unwrap();
    let json = ok(hsm.cmd().args(["--module", module, "list-slots", "--json"]));
    assert!(!json.contains("\\u0000"), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let token = common::initialized_token(&v);
    assert_eq!(token["label"], "test-hsm");
    assert_eq!(token["model"], "SoftHSM v2");
    let uri = token["uri"].as_str().unwrap();
    assert!(!uri.contains("%00") && uri.ends_with("token=test-hsm"), "{uri}");
    // Selection by label and by the printed URI works.
    ok(hsm.cmd().args(["--module", module, "--token", "test-hsm", "list-keys"]));
    ok(hsm.cmd().args(["--module", module, "--token", uri, "generate-key", "--label", "k"]));
    let sig = common::signature_hex(&ok(hsm
        .cmd()
        .env("HSM_DEMO_PIN", USER_PIN)
        .args(["--module", module, "sign", "--label", "k", "--data", "x"])));
    ok(hsm
        .cmd()
        .args(["--module", module, "verify", "--label", "k", "--data", "x", "--sig", &sig]));
}

#[test]
fn a_token_that_decides_usage_itself_still_gets_a_custody_key() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("tpm-template");
    let module = module.to_str().unwrap();
    let out = ok(hsm.cmd().args(["--module", module, "generate-key", "--label", "t"]));
    assert!(out.contains("custody: sensitive, never extractable"), "{out}");
    // The usage is what the token chose (SoftHSM's defaults here), and it is shown.
    let usage = common::line_value(&out, "usage:").unwrap();
    assert!(usage.starts_with("sign") && usage.contains("decrypt"), "{usage}");
    let keys = hsm.keys_json();
    let private = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["class"] == "private")
        .unwrap()
        .clone();
    assert_eq!(private["custody"]["extractable"], false);
    assert_eq!(private["custody"]["sensitive"], true);
    assert!(private["usage"].as_array().unwrap().contains(&"decrypt".into()));
    // It signs, and verification by label needs no PIN.
    let sig = common::signature_hex(&ok(hsm.cmd().args(["--module", module, "sign", "--label", "t", "--data", "x"])));
    ok(hsm
        .cmd()
        .env_remove("HSM_DEMO_PIN")
        .args(["--module", module, "verify", "--label", "t", "--data", "x", "--sig", &sig]));
    // Where the token takes the narrow template (plain SoftHSM), the key signs only.
    let out = hsm.run_ok(&["generate-key", "--label", "narrow"]);
    assert_eq!(common::line_value(&out, "usage:").as_deref(), Some("sign (as the token set it)"));
}

/// A module without C_InitToken, C_InitPIN and C_SetPIN (as AWS CloudHSM's SDK 5
/// documents): what needs them is refused before anything changes, one line, exit 3;
/// what does not (keys, signing, a ceremony without a quorum) works.
#[test]
fn a_module_without_pin_functions_refuses_quorums_up_front_and_does_the_rest() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("no-pin-functions");
    let module = module.to_str().unwrap();
    let line = fails_with(
        hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["--module", module, "init-token", "--label", "second"]),
        3,
    );
    assert!(line.contains("lacks C_InitToken, C_InitPIN; nothing was created"), "{line}");
    let line = fails_with(
        hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["--module", module, "key-ceremony", "--out", "c", "--label", "r1"]),
        3,
    );
    assert!(line.contains("C_SetPIN (a quorum replaces a PIN)"), "{line}");
    assert!(!hsm.path("c").exists(), "nothing written");
    let keys = ok(hsm.cmd().args(["--module", module, "list-keys", "--json"]));
    assert!(!keys.contains("\"r1\""), "no key left behind: {keys}");
    let line = fails_with(
        hsm.cmd().args(["--module", module, "key-ceremony", "--no-quorum", "--out", "c", "--label", "r1", "--activation-quorum", "2/3"]),
        3,
    );
    assert!(line.contains("C_SetPIN"), "{line}");
    let out = ok(hsm.cmd().args(["--module", module, "key-ceremony", "--no-quorum", "--out", "c", "--label", "r1"]));
    assert!(out.contains("[Step 4] Ceremony complete."), "{out}");
    ok(hsm.cmd().args(["--module", module, "generate-key", "--label", "k"]));
    let sig = ok(hsm.cmd().args(["--module", module, "sign", "--label", "k", "--data", "x"]));
    let sig = common::signature_hex(&sig);
    ok(hsm.cmd().args(["--module", module, "verify", "--label", "k", "--data", "x", "--sig", &sig]));
}
