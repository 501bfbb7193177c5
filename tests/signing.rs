//! The OpenSSL bridge: signing through the pkcs11-provider, verification, interop with
//! the openssl CLI in both directions, encodings, custody (spy log), bad input.

mod common;

use common::{fails_with, ok, signature_hex, softhsm_module, spy_calls, succeeds, SoftHsm, SPY};
use predicates::prelude::*;

/// A DER INTEGER from unsigned big-endian bytes (independent of hsm-demo's code).
fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    let mut body = der_integer(&raw[..32]);
    body.extend(der_integer(&raw[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

fn der_to_raw(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    let mut out = Vec::new();
    let mut i = 2;
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let len = der[i + 1] as usize;
        let int = &der[i + 2..i + 2 + len];
        let int: Vec<u8> = int.iter().copied().skip_while(|b| *b == 0).collect();
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend(int);
        i += 2 + len;
    }
    out
}

#[test]
fn hsm_demo_signs_and_openssl_verifies() {
    let hsm = SoftHsm::new();
    hsm.generate("service-key");
    let data = hsm.write("data.txt", "certificate signing request");
    let out = hsm.run_ok(&[
        "sign",
        "--label",
        "service-key",
        "--in",
        data.to_str().unwrap(),
    ]);
    let sig = hex::decode(signature_hex(&out)).unwrap();
    assert!(
        (70..=72).contains(&sig.len()),
        "DER ECDSA-Sig-Value, got {} bytes",
        sig.len()
    );
    let sig_file = hsm.write("sig.der", &sig);
    hsm.run_ok(&[
        "export-pubkey",
        "--label",
        "service-key",
        "--out",
        "pub.pem",
    ]);
    let verified = ok(hsm
        .openssl()
        .args(["dgst", "-sha256", "-verify", "pub.pem", "-signature"])
        .arg(&sig_file)
        .arg(&data));
    assert_eq!(verified.trim(), "Verified OK");
    let tampered = hsm.write("tampered.txt", "TAMPERED data");
    hsm.openssl()
        .args(["dgst", "-sha256", "-verify", "pub.pem", "-signature"])
        .arg(&sig_file)
        .arg(&tampered)
        .assert()
        .failure()
        .stdout(predicates::str::contains("Verification failure"));
}

#[test]
fn openssl_signs_with_the_provider_and_hsm_demo_verifies() {
    let hsm = SoftHsm::new();
    let uri = hsm.generate("service-key");
    let data = hsm.write("data.txt", "hello cert world");
    // The openssl CLI, pointed at openssl-conf/pkcs11.cnf, signs with the token key by URI.
    ok(hsm
        .openssl()
        .args([
            "dgst",
            "-sha256",
            "-sign",
            &uri,
            "-passin",
            "env:HSM_DEMO_PIN",
            "-out",
            "sig.der",
        ])
        .arg(&data));
    let out = hsm.run_ok(&[
        "verify",
        "--label",
        "service-key",
        "--in",
        data.to_str().unwrap(),
        "--sig-file",
        "sig.der",
    ]);
    assert_eq!(out, "Signature verified OK\n");
    let sig_hex = hex::encode(std::fs::read(hsm.path("sig.der")).unwrap());
    hsm.cmd()
        .args([
            "verify",
            "--key",
            &uri,
            "--data",
            "tampered data",
            "--sig",
            &sig_hex,
        ])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("signature verification failed"));
    // The CLI also lists the key through the provider, with the URI hsm-demo printed.
    let listing = ok(hsm.openssl().args([
        "storeutl",
        "-keys",
        "-text",
        "-passin",
        "env:HSM_DEMO_PIN",
        "pkcs11:token=test-hsm",
    ]));
    assert!(
        listing.contains("PKCS11 EC Private Key (256 bits)"),
        "{listing}"
    );
    assert!(
        listing.contains("[Can't export and print private key data]"),
        "{listing}"
    );
    assert!(
        listing.contains("object=service-key;type=private"),
        "{listing}"
    );
}

#[test]
fn signatures_with_high_and_low_bits_convert_and_verify_both_ways() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    hsm.run_ok(&["export-pubkey", "--label", "k", "--out", "pub.pem"]);
    let data = hsm.write("data", "bits");
    // (r high, r low, s high, s low) seen in raw and in DER signatures.
    let mut seen = [[false; 4]; 2];
    for i in 0..200 {
        if seen.iter().all(|s| s.iter().all(|b| *b)) {
            break;
        }
        let format = if i % 2 == 0 { "raw" } else { "der" };
        let out = hsm.run_ok(&["sign", "--label", "k", "--data", "bits", "--format", format]);
        let sig = hex::decode(signature_hex(&out)).unwrap();
        let (raw, der) = if format == "raw" {
            assert_eq!(sig.len(), 64);
            (sig.clone(), raw_to_der(&sig))
        } else {
            (der_to_raw(&sig), sig.clone())
        };
        assert_eq!(raw_to_der(&raw), der, "the DER is minimal");
        let idx = usize::from(format == "der");
        let r_high = raw[0] & 0x80 != 0;
        let s_high = raw[32] & 0x80 != 0;
        seen[idx][usize::from(!r_high)] = true;
        seen[idx][2 + usize::from(!s_high)] = true;
        // hsm-demo verifies both encodings; openssl verifies the DER.
        for form in [&raw, &der] {
            hsm.cmd()
                .args([
                    "verify",
                    "--label",
                    "k",
                    "--data",
                    "bits",
                    "--sig",
                    &hex::encode(form),
                ])
                .assert()
                .success();
        }
        let f = hsm.write("s.der", &der);
        assert_eq!(
            ok(hsm
                .openssl()
                .args(["dgst", "-sha256", "-verify", "pub.pem", "-signature"])
                .arg(f)
                .arg(&data))
            .trim(),
            "Verified OK"
        );
    }
    assert!(
        seen.iter().all(|s| s.iter().all(|b| *b)),
        "all bit cases occurred: {seen:?}"
    );
}

#[test]
fn signing_happens_in_the_token_and_the_private_value_never_leaves_it() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let log = hsm.path("spy.log");
    succeeds(
        hsm.cmd()
            .env("PKCS11SPY", softhsm_module())
            .env("PKCS11SPY_OUTPUT", &log)
            .args(["--module", SPY, "sign", "--label", "k", "--data", "x"]),
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(spy_calls(&log, "C_SignInit"), 1);
    assert_eq!(spy_calls(&log, "C_Sign"), 1);
    let sign_init = text.split(": C_SignInit").nth(1).unwrap();
    assert!(
        sign_init
            .lines()
            .take(6)
            .any(|l| l.contains("pMechanism->type = CKM_ECDSA ")),
        "{sign_init}"
    );
    // No attribute read ever asked for CKA_VALUE (the private scalar).
    for call in text.split(": C_GetAttributeValue").skip(1) {
        let body = call.split("\n[out]").next().unwrap_or("");
        let until_next = call.split("\n\n").next().unwrap_or("");
        assert!(
            !body.contains("CKA_VALUE ") && !until_next.contains("CKA_VALUE "),
            "CKA_VALUE requested: {call}"
        );
    }
    assert!(spy_calls(&log, "C_GetAttributeValue") > 0);
}

#[test]
fn verify_with_pubkey_or_cert_needs_no_token() {
    let dir = SoftHsm::empty();
    let sh = |args: &[&str]| {
        ok(dir.tool("openssl").args(args));
    };
    sh(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "key.pem",
    ]);
    sh(&["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    sh(&[
        "req", "-new", "-x509", "-key", "key.pem", "-subj", "/CN=test", "-days", "1", "-out",
        "cert.pem",
    ]);
    dir.write("data", "payload");
    sh(&[
        "dgst", "-sha256", "-sign", "key.pem", "-out", "sig.der", "data",
    ]);
    // No SOFTHSM2_CONF, no module, an empty HOME: the token layer is never touched.
    for (flag, file) in [("--pubkey", "pub.pem"), ("--cert", "cert.pem")] {
        dir.bare_cmd()
            .args([
                "--module",
                "/nonexistent.so",
                "verify",
                flag,
                file,
                "--in",
                "data",
                "--sig-file",
                "sig.der",
            ])
            .assert()
            .success()
            .stdout("Signature verified OK\n");
        dir.bare_cmd()
            .args([
                "verify",
                flag,
                file,
                "--data",
                "other",
                "--sig-file",
                "sig.der",
            ])
            .assert()
            .code(1);
    }
    assert!(
        !dir.path(".local").exists(),
        "no embedded token store was created"
    );
}

#[test]
fn bad_inputs_are_one_line_with_the_documented_code() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let out = hsm.run_ok(&["sign", "--label", "k", "--data", "d"]);
    let der = hex::decode(signature_hex(&out)).unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec!["--sig".into(), "abc".into()],
            2,
            "odd number of hex digits",
        ),
        (vec!["--sig".into(), "zz".repeat(32)], 2, "not hex"),
        (
            vec!["--sig".into(), hex::encode(&der[..der.len() - 5])],
            2,
            "not a valid ECDSA-Sig-Value",
        ),
        (vec!["--sig".into(), "11".repeat(63)], 2, "63 bytes"),
        (vec!["--sig".into(), String::new()], 2, "signature is empty"),
    ];
    for (sig_args, code, message) in cases {
        let mut args = vec![
            "verify".to_string(),
            "--label".into(),
            "k".into(),
            "--data".into(),
            "d".into(),
        ];
        args.extend(sig_args);
        let line = fails_with(hsm.cmd().args(&args), code);
        assert!(line.contains(message), "{args:?}: {line}");
    }
    assert!(fails_with(
        hsm.cmd().args(["sign", "--label", "nope", "--data", "d"]),
        2
    )
    .contains("no private key matches label 'nope'"));
    assert!(fails_with(
        hsm.cmd()
            .args(["sign", "--label", "k", "--in", "missing.txt"]),
        2
    )
    .contains("cannot read --in missing.txt: No such file or directory"));
    fails_with(
        hsm.cmd().args([
            "verify",
            "--label",
            "k",
            "--in",
            "missing.txt",
            "--sig",
            "00",
        ]),
        2,
    );
    // --out never overwrites.
    hsm.write("exists.sig", "keep me");
    hsm.cmd()
        .args(["sign", "--label", "k", "--data", "d", "--out", "exists.sig"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("refusing to overwrite"));
    assert_eq!(
        std::fs::read_to_string(hsm.path("exists.sig")).unwrap(),
        "keep me"
    );
}

#[test]
fn an_ambiguous_label_is_refused() {
    let hsm = SoftHsm::new();
    // Another client happily makes two key pairs with one label (docs/platform.md).
    for id in ["01", "02"] {
        hsm.pkcs11_tool_keypair("dup", id, "EC:prime256v1");
    }
    let line = fails_with(hsm.cmd().args(["sign", "--label", "dup", "--data", "d"]), 2);
    assert!(
        line.contains("2 private keys match label 'dup'") && line.contains("--key"),
        "{line}"
    );
    // The URI with an id picks one.
    hsm.cmd()
        .args(["sign", "--key", "pkcs11:object=dup;id=%02", "--data", "d"])
        .assert()
        .success();
    // A key hsm-demo cannot sign with is refused before OpenSSL is involved.
    hsm.pkcs11_tool_keypair("k1", "03", "EC:secp256k1");
    hsm.cmd()
        .args(["sign", "--label", "k1", "--data", "d"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("key 'k1' cannot sign: it is EC other"));
    // Reading it is refused the same way (one refusal, one exit code), in plain words.
    for args in [vec!["export-pubkey", "--label", "k1"], vec!["verify", "--label", "k1", "--data", "d", "--sig", "3044"]] {
        let line = fails_with(hsm.cmd().args(&args), 2);
        assert!(line.contains("an EC key on curve other than P-256, P-384, P-521 is not a key hsm-demo reads"), "{args:?}: {line}");
        assert!(!line.contains("Nid") && !line.contains("Some("), "{line}");
    }
    // An RSA key another client made signs (PKCS#1 v1.5 by default).
    hsm.pkcs11_tool_keypair("rsa", "04", "rsa:2048");
    hsm.cmd()
        .args(["sign", "--label", "rsa", "--data", "d"])
        .assert()
        .success();
}

#[test]
fn every_command_exits_normally_never_by_a_signal() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let out = hsm.run_ok(&["sign", "--label", "k", "--data", "d"]);
    let sig = signature_hex(&out);
    let runs: Vec<Vec<&str>> = vec![
        vec!["list-slots"],
        vec!["list-slots", "--json"],
        vec!["list-keys"],
        vec!["generate-key", "--label", "k2"],
        vec!["sign", "--label", "k", "--data", "d"],
        vec!["sign", "--label", "k", "--data", "d", "--format", "raw"],
        vec!["verify", "--label", "k", "--data", "d", "--sig", &sig],
        vec!["verify", "--label", "k", "--data", "x", "--sig", &sig],
        vec!["export-pubkey", "--label", "k"],
        vec!["openssl-env"],
        vec!["sign", "--label", "missing", "--data", "d"],
    ];
    for args in runs {
        let status = hsm.cmd().args(&args).assert().get_output().status;
        assert!(
            status.code().is_some(),
            "{args:?} ended by a signal: {status:?}"
        );
    }
}
