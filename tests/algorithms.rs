//! Every algorithm end to end on SoftHSM2: generate-key, sign, verify by hsm-demo and
//! by the openssl CLI, tampering, PSS against PKCS#1, a ceremony root in each
//! algorithm checked by openssl and pkilint, and refusals.

mod common;

use std::path::PathBuf;

use common::{fails_with, ok, SoftHsm, SO_PIN};
use predicates::prelude::*;

/// (algorithm, generate-key's first line, the openssl dgst flag or None for Ed25519)
const ALGORITHMS: [(&str, &str, Option<&str>); 7] = [
    ("ec-p256", "Generated ECDSA P-256 key pair", Some("-sha256")),
    ("ec-p384", "Generated ECDSA P-384 key pair", Some("-sha384")),
    ("ec-p521", "Generated ECDSA P-521 key pair", Some("-sha512")),
    ("rsa-2048", "Generated RSA-2048 key pair", Some("-sha256")),
    ("rsa-3072", "Generated RSA-3072 key pair", Some("-sha256")),
    ("rsa-4096", "Generated RSA-4096 key pair", Some("-sha256")),
    ("ed25519", "Generated Ed25519 key pair", None),
];

/// The openssl CLI (no provider) verifies `sig` over `data` with `pubkey`.
fn openssl_verify(hsm: &SoftHsm, flag: Option<&str>, extra: &[&str], pubkey: &str, sig: &str, data: &str) -> bool {
    let mut cmd = hsm.tool("openssl");
    match flag {
        Some(flag) => cmd
            .args(["dgst", flag])
            .args(extra)
            .args(["-verify", pubkey, "-signature", sig, data]),
        None => cmd.args([
            "pkeyutl", "-verify", "-pubin", "-inkey", pubkey, "-rawin", "-in", data, "-sigfile", sig,
        ]),
    };
    cmd.output().unwrap().status.success()
}

#[test]
fn every_algorithm_generates_signs_and_verifies_with_hsm_demo_and_openssl() {
    let hsm = SoftHsm::new();
    hsm.write("data.txt", "certificate request, every algorithm");
    hsm.write("tampered.txt", "certificate request, tampered");
    for (algo, first_line, flag) in ALGORITHMS {
        let label = format!("k-{algo}");
        let out = hsm.run_ok(&["generate-key", "--label", &label, "--algo", algo]);
        assert!(out.starts_with(&format!("{first_line}, label: {label}\n")), "{out}");
        let pem = &out[out.find("-----BEGIN PUBLIC KEY-----").unwrap()..];
        let pubkey = format!("{label}.pem");
        hsm.write(&pubkey, pem);

        let sig_hex = common::signature_hex(&hsm.run_ok(&["sign", "--label", &label, "--in", "data.txt"]));
        let sig = format!("{label}.sig");
        hsm.write(&sig, hex::decode(&sig_hex).unwrap());
        assert!(openssl_verify(&hsm, flag, &[], &pubkey, &sig, "data.txt"), "{algo}: openssl rejects");
        assert!(!openssl_verify(&hsm, flag, &[], &pubkey, &sig, "tampered.txt"), "{algo}: tamper");
        hsm.cmd()
            .args(["verify", "--label", &label, "--in", "data.txt", "--sig", &sig_hex])
            .assert()
            .success()
            .stdout("Signature verified OK\n");
        hsm.cmd()
            .args(["verify", "--pubkey", &pubkey, "--in", "tampered.txt", "--sig-file", &sig])
            .assert()
            .code(1);
        // openssl signs with a software key of the same kind; hsm-demo verifies.
        let soft = format!("{label}.soft.pem");
        let genpkey: Vec<&str> = match algo {
            "ec-p256" => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "ec-p384" => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "ec-p521" => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
            "ed25519" => vec!["-algorithm", "ED25519"],
            _ => vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        };
        ok(hsm.tool("openssl").arg("genpkey").args(&genpkey).args(["-out", &soft]));
        let soft_pub = format!("{label}.soft.pub.pem");
        ok(hsm.tool("openssl").args(["pkey", "-in", &soft, "-pubout", "-out", &soft_pub]));
        let soft_sig = format!("{label}.soft.sig");
        match flag {
            Some(flag) => ok(hsm.tool("openssl").args(["dgst", flag, "-sign", &soft, "-out", &soft_sig, "data.txt"])),
            None => ok(hsm.tool("openssl").args(["pkeyutl", "-sign", "-inkey", &soft, "-rawin", "-in", "data.txt", "-out", &soft_sig])),
        };
        hsm.cmd()
            .args(["verify", "--pubkey", &soft_pub, "--in", "data.txt", "--sig-file", &soft_sig])
            .assert()
            .success();
    }
    // list-keys shows kinds and sizes.
    let keys = hsm.run_ok(&["list-keys"]);
    for want in ["type:     EC P-384", "type:     RSA 3072 bits", "type:     EdDSA Ed25519"] {
        assert!(keys.contains(want), "{want} missing:\n{keys}");
    }
}

#[test]
fn pss_signatures_verify_as_pss_and_not_as_pkcs1() {
    let hsm = SoftHsm::new();
    let out = hsm.run_ok(&["generate-key", "--label", "r", "--algo", "rsa-3072"]);
    hsm.write("r.pem", &out[out.find("-----BEGIN PUBLIC KEY-----").unwrap()..]);
    hsm.write("data.txt", "pss");
    for digest in ["sha256", "sha384"] {
        let sig_hex = common::signature_hex(&hsm.run_ok(&[
            "sign", "--label", "r", "--in", "data.txt", "--padding", "pss", "--digest", digest,
        ]));
        hsm.write("pss.sig", hex::decode(&sig_hex).unwrap());
        let flag = format!("-{digest}");
        let pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"];
        assert!(openssl_verify(&hsm, Some(&flag), &pss, "r.pem", "pss.sig", "data.txt"));
        assert!(!openssl_verify(&hsm, Some(&flag), &[], "r.pem", "pss.sig", "data.txt"), "not PKCS#1");
        hsm.cmd()
            .args(["verify", "--label", "r", "--in", "data.txt", "--sig", &sig_hex])
            .args(["--padding", "pss", "--digest", digest])
            .assert()
            .success();
        hsm.cmd()
            .args(["verify", "--label", "r", "--in", "data.txt", "--sig", &sig_hex])
            .args(["--digest", digest])
            .assert()
            .code(1)
            .stderr("hsm-demo: signature verification failed\n");
    }
}

#[test]
fn every_algorithm_makes_a_root_that_verifies_and_lints_clean() {
    let lint = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pkilint-venv/bin");
    for (algo, sig_alg, cabf) in [
        ("ec-p384", "ecdsa-with-SHA384", true),
        ("ec-p521", "ecdsa-with-SHA512", false),
        ("rsa-3072", "sha256WithRSAEncryption", true),
        ("ed25519", "ED25519", false),
    ] {
        let hsm = SoftHsm::new();
        let out = ok(hsm
            .cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["key-ceremony", "--algo", algo, "--out", "c", "--no-quorum"]));
        let step_algo = match algo {
            "ec-p384" => "EC/P-384",
            "ec-p521" => "EC/P-521",
            "rsa-3072" => "RSA/3072",
            _ => "EdDSA/Ed25519",
        };
        assert!(
            out.contains(&format!("[Step 1] Key pair generated: label=root-ca-key, algo={step_algo}")),
            "{out}"
        );
        let text = ok(hsm.tool("openssl").args(["x509", "-noout", "-text", "-in", "c/root-ca.pem"]));
        assert!(text.contains(&format!("Signature Algorithm: {sig_alg}")), "{algo}: {text}");
        ok(hsm.tool("openssl").args(["verify", "-CAfile", "c/root-ca.pem", "c/root-ca.pem"]));
        // The transcript names the command that checks its signature; run it.
        let transcript = std::fs::read_to_string(hsm.path("c/transcript.txt")).unwrap();
        let check = transcript.lines().last().unwrap().trim().to_string();
        let words: Vec<&str> = check.split_whitespace().collect();
        assert_eq!(words[0], "openssl", "{check}");
        ok(hsm.tool("openssl").args(&words[1..]).current_dir(hsm.path("c")));
        ok(hsm.bare_cmd().args(["verify-ceremony", "c"]));
        let mut lints = vec![("lint_pkix_cert", vec![])];
        if cabf {
            lints.push(("lint_cabf_serverauth_cert", vec!["-t", "ROOT-CA"]));
        }
        for (tool, extra) in lints {
            let report = ok(hsm
                .tool(lint.join(tool).to_str().unwrap())
                .arg("lint")
                .args(&extra)
                .args(["-s", "WARNING", "c/root-ca.pem"]));
            assert!(report.trim().is_empty(), "{algo} {tool}:\n{report}");
        }
    }
}

#[test]
fn unknown_algorithms_and_missing_mechanisms_are_refused_before_anything_is_created() {
    let hsm = SoftHsm::new();
    for bad in ["rsa-1024", "ec-p224", "dsa"] {
        let line = fails_with(hsm.cmd().args(["generate-key", "--label", "x", "--algo", bad]), 2);
        assert!(line.contains("use one of ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096, ed25519"), "{line}");
    }
    let module = hsm.fault_module("no-eddsa");
    let module = module.to_str().unwrap();
    // list-slots says what each token can do, from its mechanism list.
    let algorithms = |extra: &[&str]| {
        let v: serde_json::Value =
            serde_json::from_str(&ok(hsm.cmd().args(extra).args(["list-slots", "--json"]))).unwrap();
        v["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s["token"]["algorithms"].as_array().filter(|a| !a.is_empty()).cloned())
            .unwrap()
    };
    assert_eq!(algorithms(&[]).len(), 7);
    let without = algorithms(&["--module", module]);
    assert_eq!(without.len(), 6);
    assert!(!without.contains(&"ed25519".into()));
    let line = fails_with(
        hsm.cmd().args(["--module", module, "generate-key", "--label", "e", "--algo", "ed25519"]),
        3,
    );
    assert!(line.contains("lacks CKM_EC_EDWARDS_KEY_PAIR_GEN; nothing was created"), "{line}");
    let line = fails_with(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["--module", module, "key-ceremony", "--algo", "ed25519", "--out", "c"]),
        3,
    );
    assert!(line.contains("CKM_EC_EDWARDS_KEY_PAIR_GEN"), "{line}");
    assert!(!hsm.path("c").exists());
    // A key made where the mechanism exists, then used through the module without it.
    hsm.run_ok(&["generate-key", "--label", "e", "--algo", "ed25519"]);
    let line = fails_with(
        hsm.cmd().args(["--module", module, "sign", "--label", "e", "--data", "x"]),
        3,
    );
    assert!(line.contains("cannot sign with this key: it lacks CKM_EDDSA"), "{line}");
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 2);
    // Options that do not fit the key.
    hsm.cmd()
        .args(["sign", "--label", "e", "--data", "x", "--digest", "sha384"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Ed25519 signs the whole message"));
    hsm.cmd()
        .args(["sign", "--label", "e", "--data", "x", "--format", "raw"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--format raw is for ECDSA signatures only"));
}

#[test]
fn rsa_signs_correctly_on_a_token_without_hash_and_sign_mechanisms() {
    // opencryptoki's soft token lists CKM_RSA_PKCS and CKM_RSA_PKCS_PSS but no
    // CKM_SHA256_RSA_PKCS; the fault module makes SoftHSM look the same.
    let hsm = SoftHsm::new();
    let out = hsm.run_ok(&["generate-key", "--label", "r", "--algo", "rsa-2048"]);
    hsm.write("r.pem", &out[out.find("-----BEGIN PUBLIC KEY-----").unwrap()..]);
    hsm.write("data.txt", "no hash-and-sign");
    let module = hsm.fault_module("no-hash-rsa");
    let module = module.to_str().unwrap();
    for (padding, digest, extra) in [
        ("pkcs1", "sha256", vec![]),
        ("pkcs1", "sha512", vec![]),
        ("pss", "sha256", vec!["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]),
    ] {
        let out = ok(hsm.cmd().args(["--module", module, "sign", "--label", "r", "--in", "data.txt"]).args([
            "--padding", padding, "--digest", digest,
        ]));
        hsm.write("s.bin", hex::decode(common::signature_hex(&out)).unwrap());
        let flag = format!("-{digest}");
        assert!(openssl_verify(&hsm, Some(&flag), &extra, "r.pem", "s.bin", "data.txt"), "{padding} {digest}");
    }
    // X509_sign through the provider would sign without the DigestInfo there
    // (pkcs11-provider issue #592): the TBSCertificate is signed over a host digest
    // instead, and the root verifies.
    let out = ok(hsm
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["--module", module, "key-ceremony", "--algo", "rsa-2048", "--label", "root", "--out", "c"]));
    assert!(out.contains("[Step 4] Ceremony complete."), "{out}");
    ok(hsm.tool("openssl").args(["verify", "-CAfile", "c/root-ca.pem", "c/root-ca.pem"]));
    ok(hsm.bare_cmd().args(["verify-ceremony", "c"]));
    // The same ceremony through the real SoftHSM (X509_sign in the provider) makes a
    // certificate of the same shape: only serial, key, dates and signature differ.
    let text = ok(hsm.tool("openssl").args(["x509", "-noout", "-text", "-in", "c/root-ca.pem"]));
    assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"), "{text}");
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 4, "'r' and the root");
}
