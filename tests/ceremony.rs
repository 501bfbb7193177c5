//! key-ceremony and the quorum, against real SoftHSM2 tokens, the openssl CLI,
//! pkcs11-tool and an independent certificate linter (pkilint).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{fails_with, ok, succeeds, SoftHsm, SO_PIN, USER_PIN};
use predicates::prelude::*;

fn ceremony(hsm: &SoftHsm, extra: &[&str]) -> (String, PathBuf) {
    let out_dir = hsm.path("ceremony");
    let mut args = vec!["key-ceremony", "--out", out_dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = succeeds(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(&args));
    (String::from_utf8(out.stdout).unwrap(), out_dir)
}

fn object_count(hsm: &SoftHsm) -> usize {
    hsm.keys_json()["keys"].as_array().unwrap().len()
}

fn pkilint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pkilint-venv/bin")
}

#[test]
fn a_full_ceremony_prints_the_seed_transcript_and_writes_checkable_outputs() {
    let hsm = SoftHsm::new();
    let (stdout, dir) = ceremony(&hsm, &[]);
    let steps: Vec<&str> = stdout.lines().filter(|l| l.starts_with('[')).collect();
    assert!(
        steps[0] == "[Step 1] Key pair generated: label=root-ca-key, algo=EC/P-256",
        "{stdout}"
    );
    assert!(
        steps[1].starts_with("[Step 2] Public key (hex): 04")
            && steps[1].len() == "[Step 2] Public key (hex): ".len() + 130,
        "{stdout}"
    );
    assert!(
        steps[2].starts_with("[Root CA] Self-signed certificate"),
        "{stdout}"
    );
    assert!(
        steps[3].starts_with("[Step 3] Quorum created") && steps[3].contains("3-of-5"),
        "{stdout}"
    );
    assert_eq!(steps[4], "[Step 4] Ceremony complete. Store HSM in vault.");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "root-ca.pem",
            "root-ca.pub.pem",
            "share-1-of-5.json",
            "share-2-of-5.json",
            "share-3-of-5.json",
            "share-4-of-5.json",
            "share-5-of-5.json",
            "transcript.sig",
            "transcript.txt"
        ]
    );
    for i in 1..=5 {
        let mode = std::fs::metadata(dir.join(format!("share-{i}-of-5.json")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "share {i}");
    }
    // No staging directory is left beside the output.
    assert!(!std::fs::read_dir(hsm.dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".ceremony-partial")));

    // The root verifies as its own trust anchor, with the openssl CLI alone.
    let v = ok(hsm
        .openssl()
        .args(["verify", "-CAfile"])
        .arg(dir.join("root-ca.pem"))
        .arg(dir.join("root-ca.pem")));
    assert!(v.trim().ends_with("root-ca.pem: OK"), "{v}");
    let text = ok(hsm
        .openssl()
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.join("root-ca.pem")));
    for want in [
        "Version: 3 (0x2)",
        "Signature Algorithm: ecdsa-with-SHA256",
        "Subject: C = US, O = hsm-demo, CN = hsm-demo Root CA",
        "X509v3 Basic Constraints: critical\n                CA:TRUE",
        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("Extended Key Usage"), "{text}");
    // The certificate's key is the token key: same SPKI as export-pubkey.
    let cert_pub = ok(hsm
        .openssl()
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(dir.join("root-ca.pem")));
    assert_eq!(
        cert_pub,
        hsm.run_ok(&["export-pubkey", "--label", "root-ca-key"])
    );

    // The transcript is signed by the root key and lists every other file's SHA-256.
    let v = ok(hsm
        .openssl()
        .args(["dgst", "-sha256", "-verify"])
        .arg(dir.join("root-ca.pub.pem"))
        .arg("-signature")
        .arg(dir.join("transcript.sig"))
        .arg(dir.join("transcript.txt")));
    assert_eq!(v.trim(), "Verified OK");
    let transcript = std::fs::read_to_string(dir.join("transcript.txt")).unwrap();
    for name in names.iter().filter(|n| !n.starts_with("transcript")) {
        let digest = ok(hsm.tool("sha256sum").arg(dir.join(name)));
        let digest = digest.split_whitespace().next().unwrap();
        assert!(
            transcript.contains(&format!("{digest}  {name}")),
            "{name} not hashed in transcript"
        );
    }
    let fingerprint = ok(hsm
        .openssl()
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(dir.join("root-ca.pem")));
    assert!(
        transcript.contains(fingerprint.trim().trim_start_matches("sha256 Fingerprint=")),
        "{transcript}"
    );
    assert!(
        transcript.contains("token:    label=test-hsm serial="),
        "{transcript}"
    );
    assert!(transcript
        .lines()
        .any(|l| l.ends_with("Z [Step 1] Key pair generated: label=root-ca-key, algo=EC/P-256")));

    // The seed sequence goes on with the ceremony's key.
    let sig = common::signature_hex(&hsm.run_ok(&[
        "sign",
        "--label",
        "root-ca-key",
        "--data",
        "certificate signing request",
    ]));
    hsm.cmd()
        .args([
            "verify",
            "--label",
            "root-ca-key",
            "--data",
            "certificate signing request",
            "--sig",
            &sig,
        ])
        .assert()
        .success()
        .stdout("Signature verified OK\n");
    hsm.cmd()
        .args([
            "verify",
            "--label",
            "root-ca-key",
            "--data",
            "TAMPERED data",
            "--sig",
            &sig,
        ])
        .assert()
        .code(1);
}

#[test]
fn the_new_so_pin_is_in_no_output_stream_or_file() {
    let hsm = SoftHsm::new();
    let dir = hsm.path("ceremony");
    let out = succeeds(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["key-ceremony", "--out", dir.to_str().unwrap()]),
    );
    let new_so_pin = common::recombine(&dir, &[1, 2, 4]);
    // It is the SO PIN in force: the old one is refused, this one opens the SO role.
    assert!(!hsm.pkcs11_tool_so_init_pin(SO_PIN, "11112222").status.success());
    let opened = hsm.pkcs11_tool_so_init_pin(&new_so_pin, "11112222");
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    assert!(new_so_pin.len() >= 32, "{new_so_pin}");
    // Nowhere in what the ceremony printed or wrote, in any file of the output.
    let mut places = vec![("stdout", out.stdout), ("stderr", out.stderr)];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        places.push(("file", std::fs::read(&path).unwrap()));
    }
    assert_eq!(places.len(), 2 + 9);
    for (what, bytes) in places {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&new_so_pin), "the new SO PIN is in {what}");
    }
}

#[test]
fn the_key_is_sensitive_and_never_extractable_to_other_clients() {
    let hsm = SoftHsm::new();
    ceremony(&hsm, &["--no-quorum"]);
    let listing = ok(hsm.pkcs11_tool().args([
        "--token-label",
        "test-hsm",
        "--login",
        "--pin",
        USER_PIN,
        "--list-objects",
        "--type",
        "privkey",
    ]));
    assert!(listing.contains("label:      root-ca-key"), "{listing}");
    assert!(
        listing.contains("Access:     sensitive, always sensitive, never extractable, local"),
        "{listing}"
    );
    let store = ok(hsm.openssl().args([
        "storeutl",
        "-keys",
        "-text",
        "-passin",
        "env:HSM_DEMO_PIN",
        "pkcs11:object=root-ca-key;type=private",
    ]));
    assert!(
        store.contains("[Can't export and print private key data]"),
        "{store}"
    );
}

#[test]
fn an_independent_linter_finds_no_error_or_warning() {
    let hsm = SoftHsm::new();
    let (_, dir) = ceremony(&hsm, &["--no-quorum"]);
    let cert = dir.join("root-ca.pem");
    // pkilint (DigiCert): CA/Browser Forum TLS BR profile for a root CA, and RFC 5280.
    for (tool, extra) in [
        ("lint_cabf_serverauth_cert", vec!["-t", "ROOT-CA"]),
        ("lint_pkix_cert", vec![]),
    ] {
        // pkilint is installed by scripts/setup.sh; a finding fails the run.
        let report = ok(hsm
            .tool(pkilint().join(tool).to_str().unwrap())
            .arg("lint")
            .args(&extra)
            .args(["-s", "WARNING"])
            .arg(&cert));
        assert!(report.trim().is_empty(), "{tool} findings:\n{report}");
    }
}

#[test]
fn the_same_config_works_with_openssl_req_and_gives_the_same_extensions() {
    let hsm = SoftHsm::new();
    let (_, dir) = ceremony(&hsm, &["--no-quorum"]);
    let conf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl-conf/root-ca.cnf");
    ok(hsm
        .openssl()
        .args(["req", "-new", "-x509", "-days", "30", "-config"])
        .arg(&conf)
        .args([
            "-key",
            "pkcs11:object=root-ca-key;type=private",
            "-passin",
            "env:HSM_DEMO_PIN",
            "-out",
            "cli.pem",
        ]));
    let extensions = |p: &Path| {
        let text = ok(hsm.openssl().args(["x509", "-noout", "-ext", "basicConstraints,keyUsage,subjectKeyIdentifier,authorityKeyIdentifier,extendedKeyUsage", "-in"]).arg(p));
        text
    };
    let ours = extensions(&dir.join("root-ca.pem"));
    assert_eq!(ours, extensions(&hsm.path("cli.pem")));
    assert!(
        ours.contains("critical") && ours.contains("Certificate Sign, CRL Sign"),
        "{ours}"
    );
    ok(hsm
        .openssl()
        .args(["verify", "-CAfile", "cli.pem", "cli.pem"]));
}

#[test]
fn a_rerun_or_an_existing_out_dir_is_refused_and_writes_nothing() {
    let hsm = SoftHsm::new();
    let (_, dir) = ceremony(&hsm, &[]);
    let before = object_count(&hsm);
    let again = hsm.path("again");
    hsm.cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["key-ceremony", "--out", again.to_str().unwrap()])
        .assert()
        .code(2);
    // The SO PIN is already under the quorum, so the check stops it first, or the label does.
    assert!(!again.exists());
    assert_eq!(object_count(&hsm), before);
    let other = SoftHsm::new();
    std::fs::create_dir(other.path("exists")).unwrap();
    other
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args([
            "key-ceremony",
            "--out",
            other.path("exists").to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "already exists; a ceremony never overwrites",
        ));
    assert_eq!(object_count(&other), 0);
    assert!(dir.join("root-ca.pem").exists());
}

#[test]
fn an_existing_label_is_refused_before_anything_changes() {
    let hsm = SoftHsm::new();
    hsm.generate("root-ca-key");
    let out = hsm
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["key-ceremony", "--out", "c"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("already holds an object with label 'root-ca-key'"));
    assert!(!hsm.path("c").exists());
    assert_eq!(object_count(&hsm), 2);
    // The SO PIN is unchanged: the fixture's SO PIN still works.
    let so = hsm.pkcs11_tool_so_init_pin(SO_PIN, USER_PIN);
    assert!(
        so.status.success(),
        "{}",
        String::from_utf8_lossy(&so.stderr)
    );
}

#[test]
fn a_broken_profile_is_refused_before_the_token_is_touched() {
    let hsm = SoftHsm::new();
    let conf = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl-conf/root-ca.cnf"),
    )
    .unwrap();
    hsm.write(
        "bad.cnf",
        conf.replace("keyCertSign, cRLSign", "keyCertSign, noSuchUsage"),
    );
    let stderr = fails_with(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["key-ceremony", "--config", "bad.cnf", "--out", "c"]),
        2,
    );
    assert!(
        stderr.contains("cannot make a root certificate") && stderr.contains("bad.cnf"),
        "{stderr}"
    );
    assert!(!hsm.path("c").exists());
    assert_eq!(object_count(&hsm), 0);
    // The SO PIN was not touched either.
    assert!(hsm.pkcs11_tool_so_init_pin(SO_PIN, USER_PIN).status.success());
}

#[test]
fn a_failure_after_key_generation_destroys_the_key_and_leaves_no_output() {
    let hsm = SoftHsm::new();
    // The provider is needed only once the key exists (to sign the certificate).
    let stderr = fails_with(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .env("HSM_DEMO_PROVIDER", "/nonexistent/pkcs11.so")
            .args(["key-ceremony", "--out", "c"]),
        3,
    );
    assert!(
        stderr.contains("the new key pair was destroyed and nothing was written"),
        "{stderr}"
    );
    assert!(!hsm.path("c").exists());
    assert_eq!(object_count(&hsm), 0, "the key pair was destroyed");
    assert!(hsm.pkcs11_tool_so_init_pin(SO_PIN, USER_PIN).status.success());
}

#[test]
fn without_an_so_pin_it_stops_before_step_1_unless_no_quorum() {
    let hsm = SoftHsm::new();
    let out = hsm
        .cmd()
        .env_remove("HSM_DEMO_SO_PIN")
        .args(["key-ceremony", "--out", "c"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let line = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        line.contains("HSM_DEMO_SO_PIN")
            && line.contains("--so-pin-file")
            && line.contains("prompted")
            && line.contains("--no-quorum"),
        "{line}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(object_count(&hsm), 0);
    let out = hsm.run_ok(&["key-ceremony", "--no-quorum", "--out", "c"]);
    assert!(
        out.contains("[Step 3] No quorum made (--no-quorum)"),
        "{out}"
    );
    // A wrong SO PIN also stops before Step 1.
    let other = SoftHsm::new();
    other
        .cmd()
        .env("HSM_DEMO_SO_PIN", "99999999")
        .args(["key-ceremony", "--out", "c"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("[Step 1]").not());
    assert_eq!(object_count(&other), 0);
}

#[test]
fn days_are_bounded() {
    let hsm = SoftHsm::new();
    hsm.cmd()
        .args(["key-ceremony", "--no-quorum", "--days", "9200"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("25 years"));
    hsm.cmd()
        .args(["key-ceremony", "--no-quorum", "--quorum", "1/5"])
        .assert()
        .code(2);
    hsm.cmd()
        .args(["key-ceremony", "--quorum", "4/3"])
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("between M and 10"));
    assert_eq!(object_count(&hsm), 0);
}

#[test]
fn the_quorum_opens_with_any_m_shares_not_fewer_and_names_a_tampered_share() {
    let hsm = SoftHsm::new();
    let (_, dir) = ceremony(&hsm, &[]);
    let share = |i: u8| {
        dir.join(format!("share-{i}-of-5.json"))
            .display()
            .to_string()
    };
    let reset = |shares: &[String], new_pin: &str| {
        let mut cmd = hsm.cmd();
        cmd.env("HSM_DEMO_NEW_PIN", new_pin).arg("quorum-reset-pin");
        for s in shares {
            cmd.args(["--share", s]);
        }
        cmd
    };
    // The old SO PIN no longer works: the quorum replaced it.
    let old = hsm.pkcs11_tool_so_init_pin(SO_PIN, "111111");
    assert!(!old.status.success());
    // M-1 shares: a clear line, nothing changes.
    reset(&[share(1), share(2)], "222222")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "2 distinct share(s) given; this quorum needs 3 of 5",
        ));
    hsm.run_ok(&["list-keys"]);
    // Any M of N: two different subsets each reset the user PIN.
    reset(&[share(1), share(3), share(5)], "333333")
        .assert()
        .success()
        .stdout(predicate::str::contains("the user PIN was reset"));
    hsm.cmd()
        .env("HSM_DEMO_PIN", "333333")
        .arg("list-keys")
        .assert()
        .success();
    hsm.cmd().arg("list-keys").assert().code(3);
    reset(&[share(2), share(4), share(5)], "444444")
        .assert()
        .success();
    hsm.cmd()
        .env("HSM_DEMO_PIN", "444444")
        .arg("list-keys")
        .assert()
        .success();
    // A tampered share is named.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(share(4)).unwrap()).unwrap();
    let mut bytes = hex::decode(json["share"].as_str().unwrap()).unwrap();
    bytes[5] ^= 0x01;
    json["share"] = hex::encode(bytes).into();
    let tampered = hsm.write("tampered-4.json", serde_json::to_string(&json).unwrap());
    let out = reset(
        &[share(1), tampered.display().to_string(), share(5)],
        "555555",
    )
    .assert()
    .code(2)
    .get_output()
    .clone();
    let line = String::from_utf8_lossy(&out.stderr);
    assert!(
        line.contains("tampered-4.json (share 4) is corrupted or altered"),
        "{line}"
    );
    hsm.cmd()
        .env("HSM_DEMO_PIN", "444444")
        .arg("list-keys")
        .assert()
        .success();
    // A share given twice counts once.
    reset(&[share(1), share(1), share(2)], "666666")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("share 1 was given twice"));
}
