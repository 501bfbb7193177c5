//! Tokens and keys: module and token choice, PINs, list-slots, init-token,
//! generate-key, list-keys, exit codes. All against real SoftHSM2 tokens.

mod common;

use common::{
    fails_with, line_value, ok, softhsm_module, spy_calls, succeeds, SoftHsm, SPY, USER_PIN,
};
use predicates::prelude::*;

#[test]
fn list_slots_shows_the_fixture_token_in_text() {
    let hsm = SoftHsm::new();
    let out = hsm.run_ok(&["list-slots"]);
    assert!(out.contains("token present, initialized"), "{out}");
    assert_eq!(line_value(&out, "label:").as_deref(), Some("test-hsm"));
    assert!(
        out.contains("login required, user PIN initialized"),
        "{out}"
    );
    assert_eq!(
        line_value(&out, "EC keygen:").as_deref(),
        Some("yes (CKM_EC_KEY_PAIR_GEN)")
    );
    // SoftHSM 2.6 has CKM_ECDSA but not CKM_ECDSA_SHA256 (docs/platform.md).
    let sign = line_value(&out, "ECDSA sign:").unwrap();
    assert!(
        sign.starts_with("yes (") && sign.contains("CKM_ECDSA"),
        "{sign}"
    );
    // The spare uninitialized slot SoftHSM always keeps.
    assert!(out.contains("token present, not initialized"), "{out}");
    let uri = line_value(&out, "uri:").unwrap();
    assert!(
        uri.starts_with("pkcs11:") && uri.contains("token=test-hsm"),
        "{uri}"
    );
}

#[test]
fn list_slots_json_has_the_same_facts() {
    let hsm = SoftHsm::new();
    let v: serde_json::Value =
        serde_json::from_str(&hsm.run_ok(&["list-slots", "--json"])).unwrap();
    assert_eq!(v["module"]["path"], softhsm_module());
    let slots = v["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    let token = slots
        .iter()
        .find_map(|s| s["token"].as_object().filter(|t| t["initialized"] == true))
        .unwrap();
    assert_eq!(token["label"], "test-hsm");
    assert_eq!(token["model"], "SoftHSM v2");
    assert_eq!(token["login_required"], true);
    assert_eq!(token["user_pin_initialized"], true);
    assert_eq!(token["can_generate_ec"], true);
    assert_eq!(token["can_sign_ecdsa"], true);
    assert!(token["serial"].as_str().unwrap().len() >= 8);
}

#[test]
fn generate_key_makes_a_non_extractable_pair_another_client_sees() {
    let hsm = SoftHsm::new();
    let out = hsm.run_ok(&["generate-key", "--label", "service-key", "--id", "a1b2c3"]);
    assert!(
        out.starts_with("Generated ECDSA P-256 key pair, label: service-key\n"),
        "{out}"
    );
    assert_eq!(line_value(&out, "id:").as_deref(), Some("a1b2c3"));
    assert!(out.contains("-----BEGIN PUBLIC KEY-----"), "{out}");
    let uri = line_value(&out, "uri:").unwrap();
    assert!(
        uri.contains("object=service-key")
            && uri.contains("id=%A1%B2%C3")
            && uri.ends_with("type=private"),
        "{uri}"
    );

    // pkcs11-tool, an independent PKCS#11 client, sees both objects with the right attributes.
    let text = ok(hsm.pkcs11_tool().args([
        "--token-label",
        "test-hsm",
        "--login",
        "--pin",
        USER_PIN,
        "--list-objects",
    ]));
    let private = text
        .split("Private Key Object; EC")
        .nth(1)
        .expect("private key listed")
        .split("Public Key Object")
        .next()
        .unwrap();
    assert!(private.contains("label:      service-key"), "{text}");
    assert!(private.contains("ID:         a1b2c3"), "{text}");
    assert!(private.contains("Usage:      sign\n"), "{text}");
    assert!(
        private.contains("Access:     sensitive, always sensitive, never extractable, local"),
        "{text}"
    );
    let public = text
        .split("Public Key Object; EC")
        .nth(1)
        .expect("public key listed");
    assert!(
        public.contains("EC_PARAMS:  06082a8648ce3d030107"),
        "{text}"
    );
    assert!(public.contains("ID:         a1b2c3"), "{text}");
    assert!(public.contains("Usage:      verify\n"), "{text}");

    // The printed PEM is the token's public key: compare with pkcs11-tool's export.
    let pem_start = out.find("-----BEGIN PUBLIC KEY-----").unwrap();
    std::fs::write(hsm.path("ours.pem"), &out[pem_start..]).unwrap();
    let der = hsm.path("theirs.der");
    ok(hsm
        .pkcs11_tool()
        .args([
            "--token-label",
            "test-hsm",
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            "a1b2c3",
            "-o",
        ])
        .arg(&der));
    let ours = succeeds(
        hsm.tool("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(hsm.path("ours.pem")),
    );
    assert_eq!(ours.stdout, std::fs::read(der).unwrap());
}

#[test]
fn list_keys_shows_custody_and_uris() {
    let hsm = SoftHsm::new();
    hsm.generate("k1");
    let v = hsm.keys_json();
    assert_eq!(v["token"]["label"], "test-hsm");
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let private = keys.iter().find(|k| k["class"] == "private").unwrap();
    assert_eq!(private["label"], "k1");
    assert_eq!(private["key_type"], "EC");
    assert_eq!(private["curve"], "P-256");
    assert_eq!(private["can_sign"], true);
    for (attr, want) in [
        ("sensitive", true),
        ("extractable", false),
        ("always_sensitive", true),
        ("never_extractable", true),
        ("local", true),
    ] {
        assert_eq!(private["custody"][attr], want, "{attr}");
    }
    assert_eq!(private["id"].as_str().unwrap().len(), 32, "16 random bytes");
    let public = keys.iter().find(|k| k["class"] == "public").unwrap();
    assert_eq!(public["id"], private["id"]);
    assert!(public["custody"].is_null());

    let text = hsm.run_ok(&["list-keys"]);
    assert!(text.contains("Private key 'k1'"), "{text}");
    assert!(text.contains("custody:  sensitive=yes extractable=no always-sensitive=yes never-extractable=yes local=yes"), "{text}");
}

#[test]
fn duplicate_label_or_id_is_refused_and_creates_nothing() {
    let hsm = SoftHsm::new();
    hsm.run_ok(&["generate-key", "--label", "k1", "--id", "01"]);
    let before = hsm.keys_json();
    assert!(
        fails_with(hsm.cmd().args(["generate-key", "--label", "k1"]), 2)
            .contains("already holds an object with label 'k1'; nothing was created")
    );
    assert!(fails_with(
        hsm.cmd()
            .args(["generate-key", "--label", "k2", "--id", "01"]),
        2
    )
    .contains("already holds an object with id 01"));
    assert_eq!(hsm.keys_json(), before);
}

#[test]
fn wrong_pin_is_one_line_exit_3_and_exactly_one_login_attempt() {
    let hsm = SoftHsm::new();
    let log = hsm.path("spy.log");
    let line = fails_with(
        hsm.cmd()
            .env("HSM_DEMO_PIN", "000000")
            .env("PKCS11SPY", softhsm_module())
            .env("PKCS11SPY_OUTPUT", &log)
            .args(["--module", SPY, "list-keys"]),
        3,
    );
    assert!(
        line.contains("user PIN incorrect for token 'test-hsm'"),
        "{line}"
    );
    assert!(!line.contains("000000"), "the PIN must not appear: {line}");
    assert_eq!(spy_calls(&log, "C_Login"), 1);
    // The token still accepts the right PIN (the count of failures did not lock it).
    hsm.run_ok(&["list-keys"]);
}

#[test]
fn pin_file_with_trailing_newline_works_and_missing_pin_is_explained() {
    let hsm = SoftHsm::new();
    let pin_file = hsm.path("pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    hsm.cmd()
        .env_remove("HSM_DEMO_PIN")
        .arg("--pin-file")
        .arg(&pin_file)
        .arg("list-keys")
        .assert()
        .success();
    let line = fails_with(hsm.cmd().env_remove("HSM_DEMO_PIN").arg("list-keys"), 2);
    assert!(
        line.contains("HSM_DEMO_PIN") && line.contains("--pin-file") && line.contains("prompted"),
        "{line}"
    );
}

#[test]
fn no_token_and_two_tokens_are_clear_errors() {
    let empty = SoftHsm::empty();
    let line = fails_with(empty.cmd().arg("list-keys"), 3);
    assert!(
        line.contains("no initialized token") && line.contains("hsm-demo init-token"),
        "{line}"
    );

    let two = SoftHsm::new();
    two.add_token("second-hsm");
    let line = fails_with(two.cmd().arg("list-keys"), 3);
    assert!(
        line.contains("2 initialized tokens")
            && line.contains("'test-hsm'")
            && line.contains("'second-hsm'"),
        "{line}"
    );
    assert!(line.contains("--token"), "{line}");
    // Either can then be chosen by label, URI or serial.
    two.cmd()
        .args(["--token", "second-hsm", "list-keys"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Token 'second-hsm'"));
    two.cmd()
        .args(["--token", "pkcs11:token=test-hsm", "list-keys"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Token 'test-hsm'"));
    let v: serde_json::Value =
        serde_json::from_str(&two.run_ok(&["--token", "second-hsm", "list-keys", "--json"]))
            .unwrap();
    let serial = v["token"]["serial"].as_str().unwrap().to_string();
    two.cmd()
        .args(["--serial", &serial, "list-keys"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Token 'second-hsm'"));
    two.cmd()
        .args(["--token", "nope", "list-keys"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "no initialized token matches label 'nope'",
        ));
}

#[test]
fn bad_module_paths_are_exit_3_with_a_clear_line() {
    let hsm = SoftHsm::new();
    for (module, reason) in [
        ("/nonexistent/libpkcs11.so", "no such file"),
        ("/etc/hostname", "not a loadable shared library"),
        (
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "not a PKCS#11 module (no C_GetFunctionList)",
        ),
    ] {
        let line = fails_with(hsm.cmd().args(["--module", module, "list-slots"]), 3);
        assert!(
            line.contains(&format!("cannot load PKCS#11 module {module}")) && line.contains(reason),
            "{line}"
        );
    }
    // The environment variable works like the flag.
    hsm.cmd()
        .env("HSM_DEMO_MODULE", "/nonexistent/x.so")
        .arg("list-slots")
        .assert()
        .code(3);
}

#[test]
fn pins_in_uris_are_refused() {
    let hsm = SoftHsm::new();
    let line = fails_with(
        hsm.cmd().args([
            "--token",
            "pkcs11:token=test-hsm?pin-value=123456",
            "list-keys",
        ]),
        2,
    );
    assert!(
        line.contains("PINs never go on the command line") && !line.contains("123456"),
        "{line}"
    );
}

#[test]
fn embedded_default_creates_its_own_store_and_init_token_works() {
    let hsm = SoftHsm::empty();
    let data = hsm.path("xdg");
    let run = |args: &[&str]| {
        let mut cmd = hsm.bare_cmd();
        cmd.env("XDG_DATA_HOME", &data)
            .env("HSM_DEMO_PIN", USER_PIN)
            .env("HSM_DEMO_SO_PIN", "87654321")
            .args(args);
        cmd
    };
    run(&["list-keys"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("hsm-demo init-token"));
    let conf = data.join("hsm-demo/softhsm2.conf");
    assert!(conf.exists(), "the embedded config is created on first use");
    run(&["init-token", "--label", "local-ca"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "Initialized token 'local-ca' (serial ",
        ));
    run(&["list-slots"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "SOFTHSM2_CONF={}",
            conf.display()
        )));
    run(&["generate-key", "--label", "k"]).assert().success();
    // A second token with the same label is refused: selection by label must stay unique.
    run(&["init-token", "--label", "local-ca"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
    // The SO PIN really is the one given: pkcs11-tool uses it to reset the user PIN.
    ok(hsm
        .pkcs11_tool()
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--token-label",
            "local-ca",
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            "87654321",
        ])
        .args(["--init-pin", "--new-pin", "24682468"]));
    run(&["list-keys"])
        .env("HSM_DEMO_PIN", "24682468")
        .assert()
        .success();
}

#[test]
fn malformed_percent_escapes_in_uris_are_named() {
    let hsm = SoftHsm::new();
    // `%+1` once decoded to 0x01 (u8::from_str_radix accepts a sign).
    for (uri, escape) in [("pkcs11:token=%+1", "'%+1'"), ("pkcs11:token=a%2", "'%2'")] {
        let line = fails_with(hsm.cmd().args(["--token", uri, "list-keys"]), 2);
        assert!(line.contains(escape) && line.contains("percent-escape"), "{line}");
    }
    let line = fails_with(
        hsm.cmd()
            .args(["sign", "--key", "pkcs11:object=k;id=%zz", "--data", "x"]),
        2,
    );
    assert!(line.contains("'%zz'"), "{line}");
}

#[test]
fn usage_errors_exit_2() {
    let hsm = SoftHsm::new();
    // clap's own usage errors are one line too, pointing at --help.
    for args in [
        vec!["generate-key"],
        vec!["no-such-command"],
        vec!["sign", "--label", "k", "--key", "pkcs11:object=k", "--data", "x"],
        vec!["bench", "--label", "k", "--threads", "0"],
    ] {
        let line = fails_with(hsm.cmd().args(&args), 2);
        assert!(
            line.starts_with("hsm-demo: ") && line.contains("(see 'hsm-demo --help')"),
            "{args:?}: {line}"
        );
    }
    hsm.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes: 0 success"));
    hsm.cmd()
        .args(["generate-key", "--label", "x", "--id", "abc"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("odd number of hex digits"));
}
