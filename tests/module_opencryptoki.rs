//! The same binary on opencryptoki 3.8.1's soft token (Debian's package, behind a
//! `pkcsslotd` the fixture starts and stops), by module path only: issue 12's core
//! sequence. The soft token has RSA and no EC, PINs of 4 to 8 characters, and a
//! malformed `utcTime` that must show as unknown. The fixture serializes these tests
//! (one daemon, one token store per machine) and puts the machine back as it was.

mod common;

use common::opencryptoki::{Opencryptoki, OCK_DEFAULT_SO_PIN, OCK_USER_PIN};
use common::{fails_with, ok};

#[test]
fn list_slots_and_init_token_despite_the_malformed_clock() {
    let ock = Opencryptoki::empty();
    let text = ok(ock.cmd().arg("list-slots"));
    assert!(text.contains("(IBM, Meta PKCS11 LIBRARY"), "{text}");
    assert!(text.contains("token present, not initialized"), "{text}");
    ok(ock.cmd().env("HSM_DEMO_SO_PIN", OCK_DEFAULT_SO_PIN).args(["init-token", "--label", "ock"]));
    let text = ok(ock.cmd().arg("list-slots"));
    assert!(text.contains("label:        ock"), "{text}");
    assert!(text.contains("PIN length:   4 to 8"), "{text}");
    assert!(text.contains("clock:        unknown (the token reported"), "{text}");
    assert!(text.contains("EC keygen:    no (CKM_EC_KEY_PAIR_GEN missing)"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(ock.cmd().args(["list-slots", "--json"]))).unwrap();
    let token = common::initialized_token(&v);
    assert_eq!(token["label"], "ock");
    assert_eq!(token["max_pin_len"], 8);
    assert_eq!(token["utc_time"], serde_json::Value::Null);
    assert!(token["utc_time_malformed"].as_str().unwrap().contains(':'), "{token}");
    let algorithms: Vec<&str> = token["algorithms"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(algorithms, ["rsa-2048", "rsa-3072", "rsa-4096"]);
    // A user PIN the token cannot take is refused before it is sent.
    let line = fails_with(
        ock.cmd().env("HSM_DEMO_PIN", "nine-char").arg("list-keys"),
        2,
    );
    assert!(line.contains("4 to 8"), "{line}");
}

#[test]
fn rsa_keys_sign_and_verify_and_openssl_agrees_ec_is_refused() {
    let ock = Opencryptoki::new();
    let out = ok(ock.cmd().args(["generate-key", "--label", "rsa", "--algo", "rsa-2048"]));
    assert!(out.contains("Generated RSA-2048 key pair, label: rsa"), "{out}");
    assert!(out.contains("custody: sensitive, never extractable, generated in the token"), "{out}");
    ok(ock.cmd().args(["export-pubkey", "--label", "rsa", "--out", "rsa.pem"]));
    std::fs::write(ock.path("data"), "on opencryptoki").unwrap();
    // The soft token has no CKM_SHA256_RSA_PKCS: hsm-demo digests on the host and the
    // token pads (docs/platform.md); openssl must see a proper DigestInfo.
    for (padding, sigopts) in [("pkcs1", &[][..]), ("pss", &["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"][..])] {
        let sig_hex = common::signature_hex(&ok(ock.cmd().args(["sign", "--label", "rsa", "--in", "data", "--padding", padding])));
        std::fs::write(ock.path("sig"), hex::decode(&sig_hex).unwrap()).unwrap();
        let verified = ok(ock
            .tool("openssl")
            .args(["dgst", "-sha256"])
            .args(sigopts)
            .args(["-verify", "rsa.pem", "-signature", "sig", "data"]));
        assert_eq!(verified.trim(), "Verified OK", "{padding}");
        ok(ock.cmd().args(["verify", "--label", "rsa", "--in", "data", "--sig", &sig_hex, "--padding", padding]));
        ock.cmd()
            .args(["verify", "--label", "rsa", "--data", "tampered", "--sig", &sig_hex, "--padding", padding])
            .assert()
            .code(1);
    }
    let keys: serde_json::Value = serde_json::from_str(&ok(ock.cmd().args(["list-keys", "--json"]))).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");
    let line = fails_with(ock.cmd().args(["generate-key", "--label", "ec"]), 3);
    assert!(line.contains("lacks CKM_EC_KEY_PAIR_GEN"), "{line}");
    let keys: serde_json::Value = serde_json::from_str(&ok(ock.cmd().args(["list-keys", "--json"]))).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "the refused key left nothing: {keys}");
}

#[test]
fn ceremonies_with_and_without_a_quorum_on_8_character_pins() {
    let ock = Opencryptoki::new();
    // The default algorithm needs EC: refused before anything is created.
    let line = fails_with(
        ock.cmd().env("HSM_DEMO_SO_PIN", OCK_DEFAULT_SO_PIN).args(["key-ceremony", "--out", "ec", "--label", "root-ec"]),
        3,
    );
    assert!(line.contains("CKM_EC_KEY_PAIR_GEN"), "{line}");
    assert!(!ock.path("ec").exists());
    let out = ok(ock.cmd().args(["key-ceremony", "--no-quorum", "--algo", "rsa-2048", "--out", "plain", "--label", "root-a"]));
    assert!(out.contains("algo=RSA/2048"), "{out}");
    assert!(out.contains("[Step 4] Ceremony complete."), "{out}");
    ok(ock.cmd().args(["verify-ceremony", "plain"]));
    // The root certificate's TBS was signed through EVP_PKEY_sign over a host digest
    // (no CKM_SHA256_RSA_PKCS here): openssl and pkilint must accept it as any other.
    let text = ok(ock.tool("openssl").args(["x509", "-noout", "-text", "-in", "plain/root-ca.pem"]));
    assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"), "{text}");
    ok(ock.tool("openssl").args(["verify", "-CAfile", "plain/root-ca.pem", "plain/root-ca.pem"]));
    let lint = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pkilint-venv/bin");
    for (tool, extra) in [("lint_pkix_cert", &[][..]), ("lint_cabf_serverauth_cert", &["-t", "ROOT-CA"][..])] {
        let report = ok(ock
            .tool(lint.join(tool).to_str().unwrap())
            .arg("lint")
            .args(extra)
            .args(["-s", "WARNING", "plain/root-ca.pem"]));
        assert!(report.trim().is_empty(), "{tool}:\n{report}");
    }
    // The RSA root at work on a token without hash-and-sign: the request, the issued
    // certificate and the CRL have their TBS signed over a host digest.
    ok(ock.cmd().args(["generate-key", "--label", "sub", "--algo", "rsa-2048"]));
    ok(ock.cmd().args(["csr", "--label", "sub", "--subject", "/C=US/O=Example/CN=Sub on opencryptoki", "--out", "sub.csr"]));
    ok(ock.tool("openssl").args(["req", "-in", "sub.csr", "-noout", "-verify"]));
    ok(ock.cmd().args(["issue", "--ca", "plain", "--csr", "sub.csr", "--profile", "subordinate-ca", "--out", "sub.pem"]));
    ok(ock.tool("openssl").args(["verify", "-CAfile", "plain/root-ca.pem", "sub.pem"]));
    let serial = ok(ock.tool("openssl").args(["x509", "-in", "sub.pem", "-noout", "-serial"]));
    ok(ock.cmd().args(["revoke", "--ca", "plain", "--serial", serial.trim().trim_start_matches("serial=")]));
    ok(ock.cmd().args(["crl", "--ca", "plain", "--out", "root.crl"]));
    ok(ock.tool("openssl").args(["crl", "-in", "root.crl", "-CAfile", "plain/root-ca.pem", "-noout"]));
    // PINs of at most 8 characters: the quorum secret is 8 base64url characters.
    let out = ok(ock
        .cmd()
        .env("HSM_DEMO_SO_PIN", OCK_DEFAULT_SO_PIN)
        .args(["key-ceremony", "--algo", "rsa-2048", "--out", "c", "--label", "root-b"]));
    assert!(out.contains("a fresh 8-character secret (48 bits"), "{out}");
    assert!(out.contains("final check: a fresh process found the old SO PIN refused"), "{out}");
    ok(ock.cmd().args(["verify-ceremony", "c"]));
    ok(ock.tool("openssl").args(["verify", "-CAfile", "c/root-ca.pem", "c/root-ca.pem"]));
    let so_pin = common::recombine(&ock.path("c"), &[1, 3, 5]);
    assert_eq!(so_pin.len(), 8, "the recombined SO PIN fits the token");
    let line = fails_with(
        ock.cmd().env("HSM_DEMO_SO_PIN", OCK_DEFAULT_SO_PIN).args(["key-ceremony", "--algo", "rsa-2048", "--out", "again", "--label", "root-c"]),
        3,
    );
    assert!(line.contains("SO PIN incorrect"), "{line}");
    common::quorum_resets_user_pin(|| ock.cmd(), "newpin-1", "root-b");
    assert_ne!(OCK_USER_PIN, "newpin-1");
}

#[test]
fn bench_on_an_rsa_token_without_hash_and_sign_mechanisms() {
    let ock = Opencryptoki::new();
    ok(ock.cmd().args(["generate-key", "--label", "rsa", "--algo", "rsa-2048"]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(ock.cmd().args(["bench", "--label", "rsa", "--count", "50", "--json"]))).unwrap();
    assert!(v["scheme"].as_str().unwrap().contains("digests on the host"), "{v}");
    let paths = v["one_thread"].as_array().expect("one_thread");
    assert_eq!(paths.len(), 3, "{v}");
    for p in paths {
        assert_eq!(p["signatures"], 50, "{p}");
        assert!(p["verified"].as_u64().unwrap() >= 2, "sampled signatures verified: {p}");
        assert!(p["per_second"].as_f64().unwrap() > 0.0, "{p}");
    }
}
