//! The root at work (issue 14): CSR, subordinate CA and leaf issuance from profiles,
//! revocation, CRLs and the CA records, checked by the openssl CLI and pkilint; every
//! refusal writes nothing; a kill during signing and two concurrent issuers keep the
//! records true.

mod common;


use common::{fails_with, lint, ok, SoftHsm, SO_PIN};

/// A ceremony's root (P-384) and a subordinate CA issued by it, adopted with ca-init.
fn root_and_sub(hsm: &SoftHsm) {
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--algo", "ec-p384", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["generate-key", "--label", "sub-key"]));
    ok(hsm.cmd().args(["csr", "--label", "sub-key", "--subject", "/C=US/O=Example/CN=Example Issuing CA 1", "--out", "sub.csr"]));
    let out = ok(hsm.cmd().args([
        "issue", "--ca", "root", "--csr", "sub.csr", "--profile", "subordinate-ca", "--path-len", "0", "--out", "sub.pem", "--chain", "chain.pem",
    ]));
    assert!(out.contains("Issued serial"), "{out}");
    let both = [std::fs::read(hsm.path("sub.pem")).unwrap(), std::fs::read(hsm.path("chain.pem")).unwrap()].concat();
    hsm.write("sub-chain.pem", both);
    ok(hsm.cmd().args(["ca-init", "--ca", "sub", "--cert", "sub-chain.pem", "--label", "sub-key"]));
}

#[test]
fn ceremony_to_sub_ca_to_leaf_to_revocation_and_crl_as_openssl_and_pkilint_see_them() {
    let hsm = SoftHsm::new();
    root_and_sub(&hsm);
    // The request: openssl checks its signature (proof of possession).
    let v = succeeds_text(hsm.tool("openssl").args(["req", "-in", "sub.csr", "-noout", "-verify"]));
    assert!(v.contains("verify OK"), "{v}");
    let text = ok(hsm.tool("openssl").args(["x509", "-in", "sub.pem", "-noout", "-text"]));
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Signature Algorithm: ecdsa-with-SHA384"), "{text}");
    assert!(text.contains("Digital Signature, Certificate Sign, CRL Sign"), "{text}");
    // A leaf from the sub-CA, with the request's DNS and IP names.
    ok(hsm.cmd().args(["generate-key", "--label", "www"]));
    ok(hsm.cmd().args(["csr", "--label", "www", "--subject", "/CN=www.example.com", "--san", "DNS:www.example.com", "--san", "IP:192.0.2.7", "--out", "www.csr"]));
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "www.csr", "--profile", "tls-server", "--out", "www.pem"]));
    let v = ok(hsm.tool("openssl").args(["verify", "-CAfile", "root/root-ca.pem", "-untrusted", "sub.pem", "-purpose", "sslserver", "www.pem"]));
    assert_eq!(v.trim(), "www.pem: OK");
    let text = ok(hsm.tool("openssl").args(["x509", "-in", "www.pem", "-noout", "-ext", "subjectAltName,extendedKeyUsage"]));
    assert!(text.contains("DNS:www.example.com, IP Address:192.0.2.7") && text.contains("TLS Web Server Authentication"), "{text}");
    for cert in ["sub.pem", "www.pem"] {
        lint(&hsm, "lint_pkix_cert", &["-s", "WARNING", cert]);
    }
    lint(&hsm, "lint_pkix_signer_signee_cert_chain", &["-s", "WARNING", "root/root-ca.pem", "sub.pem"]);
    lint(&hsm, "lint_pkix_signer_signee_cert_chain", &["-s", "WARNING", "sub.pem", "www.pem"]);
    // Revoke the sub-CA at the root; the CRL is signed in the token and refuses it.
    let listing: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["list-issued", "--ca", "root", "--json"]))).unwrap();
    let sub_serial = listing["certificates"][0]["serial"].as_str().unwrap().to_string();
    assert_eq!(listing["certificates"][0]["status"], "valid");
    ok(hsm.cmd().args(["revoke", "--ca", "root", "--serial", &sub_serial, "--reason", "keyCompromise"]));
    ok(hsm.cmd().args(["crl", "--ca", "root", "--out", "root.crl"]));
    let crl = ok(hsm.tool("openssl").args(["crl", "-in", "root.crl", "-CAfile", "root/root-ca.pem", "-noout", "-text"]));
    assert!(crl.contains("X509v3 CRL Number: \n                1"), "{crl}");
    assert!(crl.contains(&sub_serial) && crl.contains("Key Compromise"), "{crl}");
    assert!(crl.contains("X509v3 Authority Key Identifier"), "{crl}");
    let refused = hsm
        .tool("openssl")
        .args(["verify", "-crl_check", "-CAfile", "root/root-ca.pem", "-CRLfile", "root.crl", "sub.pem"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).contains("certificate revoked")
        || String::from_utf8_lossy(&refused.stderr).contains("certificate revoked"));
    lint(&hsm, "lint_crl", &["-t", "CRL", "-p", "PKIX", "-s", "WARNING", "root.crl"]);
    // The next CRL has the next number; the records say revoked.
    ok(hsm.cmd().args(["crl", "--ca", "root", "--out", "root2.crl"]));
    let crl = ok(hsm.tool("openssl").args(["crl", "-in", "root2.crl", "-noout", "-text"]));
    assert!(crl.contains("X509v3 CRL Number: \n                2"), "{crl}");
    let listing = ok(hsm.cmd().args(["list-issued", "--ca", "root"]));
    assert!(listing.contains(&sub_serial) && listing.contains("revoked") && listing.contains("keyCompromise"), "{listing}");
    // The ceremony directory is still a valid ceremony (the CA files are notes).
    ok(hsm.bare_cmd().args(["verify-ceremony", "root"]));
    // --pem gives the certificate back from the records.
    let pem = ok(hsm.cmd().args(["list-issued", "--ca", "root", "--serial", &sub_serial, "--pem"]));
    assert_eq!(pem, std::fs::read_to_string(hsm.path("sub.pem")).unwrap());
}

fn succeeds_text(cmd: &mut common::Command) -> String {
    let out = common::succeeds(cmd);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn every_refusal_names_its_rule_and_records_and_writes_nothing() {
    let hsm = SoftHsm::new();
    root_and_sub(&hsm);
    ok(hsm.cmd().args(["generate-key", "--label", "leaf"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=leaf.example", "--san", "DNS:leaf.example", "--out", "leaf.csr"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=dev-1", "--san", "URI:spiffe://example.org/dev-1", "--out", "spiffe.csr"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=no-san", "--out", "nosan.csr"]));
    // A request whose signature no longer matches: one byte of the subject changed.
    let der = ok_bytes(hsm.tool("openssl").args(["req", "-in", "leaf.csr", "-outform", "DER"]));
    let at = der.windows(12).position(|w| w == b"leaf.example").unwrap();
    let mut bad = der.clone();
    bad[at] = b'L';
    hsm.write("tampered.csr", bad);
    ok(hsm.tool("openssl").args([
        "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "weak.key", "-subj", "/CN=weak.example",
        "-addext", "subjectAltName=DNS:weak.example", "-out", "weak.csr",
    ]));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--ca", "sub", "--csr", "weak.csr", "--profile", "tls-server"], "RSA-1024: keys of 2048 to 16384 bits only"),
        (vec!["--ca", "sub", "--csr", "tampered.csr", "--profile", "tls-server"], "proof of possession"),
        (vec!["--ca", "sub", "--csr", "sub.pem", "--profile", "tls-server"], "not a PKCS#10 certificate request"),
        (vec!["--ca", "sub", "--csr", "leaf.csr", "--profile", "code-signing"], "unknown profile 'code-signing'"),
        (vec!["--ca", "sub", "--csr", "leaf.csr", "--profile", "tls-client", "--days", "826"], "more than profile tls-client allows"),
        (vec!["--ca", "root", "--csr", "sub.csr", "--profile", "subordinate-ca", "--days", "4000"], "validity within the issuer's"),
        (vec!["--ca", "sub", "--csr", "leaf.csr", "--profile", "subordinate-ca", "--days", "30"], "path length below the issuer's"),
        (vec!["--ca", "sub", "--csr", "leaf.csr", "--profile", "tls-server", "--path-len", "1"], "--path-len applies to CA profiles"),
        (vec!["--ca", "sub", "--csr", "spiffe.csr", "--profile", "tls-server"], "does not take URI:spiffe://example.org/dev-1"),
        (vec!["--ca", "sub", "--csr", "nosan.csr", "--profile", "tls-server"], "subjectAltName required"),
    ];
    for (args, expect) in cases {
        let line = fails_with(hsm.cmd().arg("issue").args(&args).args(["--out", "refused.pem"]), 2);
        assert!(line.contains(expect), "{args:?}: {line}");
        assert!(!hsm.path("refused.pem").exists(), "{args:?} wrote its --out");
    }
    let records: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["list-issued", "--ca", "sub", "--json"]))).unwrap();
    assert_eq!(records["certificates"].as_array().unwrap().len(), 0, "{records}");
    let line = fails_with(hsm.cmd().args(["revoke", "--ca", "sub", "--serial", "0123ABCD"]), 2);
    assert!(line.contains("serial 0123ABCD was not issued by this CA; nothing was revoked"), "{line}");
    // All or nothing: one good serial with one unknown revokes neither.
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "leaf.csr", "--profile", "tls-server", "--out", "leaf.pem"]));
    let serial = ok(hsm.tool("openssl").args(["x509", "-in", "leaf.pem", "-noout", "-serial"])).trim().trim_start_matches("serial=").to_string();
    hsm.write("serials.txt", format!("# to revoke\n{serial}\nFFEE\n"));
    let line = fails_with(hsm.cmd().args(["revoke", "--ca", "sub", "--serials-file", "serials.txt"]), 2);
    assert!(line.contains("FFEE was not issued"), "{line}");
    let listing = ok(hsm.cmd().args(["list-issued", "--ca", "sub"]));
    assert!(listing.contains("valid") && !listing.contains("revoked"), "{listing}");
    // An output that exists is refused before the token signs: no record either.
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "leaf.csr", "--profile", "tls-server", "--out", "leaf.pem"]), 2);
    assert!(line.contains("already exists"), "{line}");
    let records: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["list-issued", "--ca", "sub", "--json"]))).unwrap();
    assert_eq!(records["certificates"].as_array().unwrap().len(), 1, "{records}");
    // A certificate that is no CA cannot become one.
    let line = fails_with(hsm.cmd().args(["ca-init", "--ca", "leaf-ca", "--cert", "leaf.pem", "--label", "leaf"]), 2);
    assert!(line.contains("refused by rule 'issuer is a CA'"), "{line}");
    assert!(!hsm.path("leaf-ca").exists());
    // A directory that is no CA.
    std::fs::create_dir(hsm.path("empty")).unwrap();
    let line = fails_with(hsm.cmd().args(["crl", "--ca", "empty"]), 2);
    assert!(line.contains("is not a CA directory"), "{line}");
    assert!(!hsm.path("empty/ca.db").exists());
}

fn ok_bytes(cmd: &mut common::Command) -> Vec<u8> {
    common::succeeds(cmd).stdout
}

/// AWS Private CA's GetCertificateAuthorityCsr returns an RSA-2048 request with subject
/// C/O/CN (and, depending on the console path, basicConstraints CA:TRUE requested);
/// the offline root signs it with --path-len 0 for ImportCertificateAuthorityCertificate.
#[test]
fn a_private_ca_shaped_request_becomes_an_importable_subordinate() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--algo", "rsa-3072", "--out", "root", "--label", "root-key"]));
    ok(hsm.tool("openssl").args([
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "pca.key", "-out", "pca.csr",
        "-subj", "/C=US/O=Example Corp/CN=Example Private CA", "-addext", "basicConstraints=critical,CA:TRUE",
    ]));
    ok(hsm.cmd().args([
        "issue", "--ca", "root", "--csr", "pca.csr", "--profile", "subordinate-ca", "--path-len", "0", "--days", "1825",
        "--out", "pca.pem", "--chain", "pca-chain.pem",
    ]));
    let text = ok(hsm.tool("openssl").args(["x509", "-in", "pca.pem", "-noout", "-text"]));
    assert!(text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Signature Algorithm: sha256WithRSAEncryption"), "{text}");
    assert!(text.contains("Subject: C = US, O = Example Corp, CN = Example Private CA"), "{text}");
    // The chain file is the issuer chain up to the root, PEM: here the root itself.
    assert_eq!(std::fs::read(hsm.path("pca-chain.pem")).unwrap(), std::fs::read(hsm.path("root/root-ca.pem")).unwrap());
    ok(hsm.tool("openssl").args(["verify", "-CAfile", "pca-chain.pem", "pca.pem"]));
    lint(&hsm, "lint_pkix_signer_signee_cert_chain", &["-s", "WARNING", "root/root-ca.pem", "pca.pem"]);
}

#[test]
fn ca_init_takes_over_an_openssl_ca_index_and_the_crl_lists_its_revocations() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "c", "--label", "legacy-key"]));
    hsm.write(
        "index.txt",
        "V\t351231235959Z\t\t1000\tunknown\t/CN=kept\n\
         R\t351231235959Z\t250102030405Z,superseded\t1001\tunknown\t/CN=replaced\n\
         R\t351231235959Z\t250102030405Z\t1002\tunknown\t/CN=plain\n\
         E\t200101000000Z\t\t1003\tunknown\t/CN=old\n",
    );
    hsm.write("bad-index.txt", "V\t351231235959Z\t\t1000\tunknown\t/CN=kept\nQ\tx\n");
    let line = fails_with(hsm.cmd().args(["ca-init", "--ca", "legacy", "--cert", "c/root-ca.pem", "--label", "legacy-key", "--import-index", "bad-index.txt"]), 2);
    assert!(line.contains("index line 2"), "{line}");
    assert!(!hsm.path("legacy/ca.db").exists());
    // A certificate whose key is not the token key is refused.
    ok(hsm.cmd().args(["generate-key", "--label", "other"]));
    let line = fails_with(hsm.cmd().args(["ca-init", "--ca", "legacy", "--cert", "c/root-ca.pem", "--label", "other"]), 2);
    assert!(line.contains("its public key is not the token key"), "{line}");
    let out = ok(hsm.cmd().args(["ca-init", "--ca", "legacy", "--cert", "c/root-ca.pem", "--label", "legacy-key", "--import-index", "index.txt"]));
    assert!(out.contains("imported: 4 record(s) from index.txt, 2 revoked"), "{out}");
    let line = fails_with(hsm.cmd().args(["ca-init", "--ca", "legacy", "--cert", "c/root-ca.pem", "--label", "legacy-key"]), 2);
    assert!(line.contains("already holds a CA's records"), "{line}");
    ok(hsm.cmd().args(["crl", "--ca", "legacy", "--out", "legacy.crl"]));
    let crl = ok(hsm.tool("openssl").args(["crl", "-in", "legacy.crl", "-CAfile", "c/root-ca.pem", "-noout", "-text"]));
    assert!(crl.contains("Serial Number: 1001") && crl.contains("Superseded") && crl.contains("Serial Number: 1002"), "{crl}");
    assert!(!crl.contains("Serial Number: 1000"), "{crl}");
    lint(&hsm, "lint_crl", &["-t", "CRL", "-p", "PKIX", "-s", "WARNING", "legacy.crl"]);
    let listing = ok(hsm.cmd().args(["list-issued", "--ca", "legacy"]));
    assert!(listing.contains("1003") && listing.contains("expired"), "{listing}");
    // An imported serial is never issued again, and can be revoked.
    ok(hsm.cmd().args(["revoke", "--ca", "legacy", "--serial", "10:00", "--reason", "cessationOfOperation"]));
    let line = fails_with(hsm.cmd().args(["revoke", "--ca", "legacy", "--serial", "1000"]), 2);
    assert!(line.contains("already revoked"), "{line}");
}

#[test]
fn a_kill_during_signing_leaves_an_abandoned_serial_and_no_false_record() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["generate-key", "--label", "leaf"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=a.example", "--san", "DNS:a.example", "--out", "a.csr"]));
    let fault = hsm.fault_module("kill-on-sign");
    let out = hsm
        .cmd()
        .args(["--module", fault.to_str().unwrap(), "issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", "a.pem"])
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "killed while the token signed: {out:?}");
    assert!(!hsm.path("a.pem").exists());
    // The next command resolves the pending record: abandoned, never a certificate.
    let listed = hsm.cmd().args(["list-issued", "--ca", "root", "--json"]).output().unwrap();
    assert!(listed.status.success());
    let note = String::from_utf8_lossy(&listed.stderr);
    assert!(note.contains("was reserved by an issuance that did not finish; it is marked abandoned and never reused"), "{note}");
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["state"], "abandoned");
    let abandoned = certs[0]["serial"].as_str().unwrap().to_string();
    let line = fails_with(hsm.cmd().args(["revoke", "--ca", "root", "--serial", &abandoned]), 2);
    assert!(line.contains("never issued"), "{line}");
    // Issuing again works, with another serial.
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", "a.pem"]));
    let v: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["list-issued", "--ca", "root", "--json"]))).unwrap();
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    let issued: Vec<_> = certs.iter().filter(|c| c["status"] == "valid").collect();
    assert_eq!(issued.len(), 1, "{v}");
    assert_ne!(issued[0]["serial"].as_str().unwrap(), abandoned);
}

#[test]
fn two_issuers_at_once_both_succeed_with_distinct_serials() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["generate-key", "--label", "leaf"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=b.example", "--san", "DNS:b.example", "--out", "b.csr"]));
    let spawn = |out: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hsm-demo"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", hsm.dir.path())
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("HSM_DEMO_MODULE", common::softhsm_module())
            .env("HSM_DEMO_PIN", common::USER_PIN)
            .current_dir(hsm.dir.path())
            .args(["issue", "--ca", "root", "--csr", "b.csr", "--profile", "tls-server", "--out", out]);
        c.spawn().unwrap()
    };
    let children: Vec<_> = (0..4).map(|i| spawn(&format!("b{i}.pem"))).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let v: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["list-issued", "--ca", "root", "--json"]))).unwrap();
    let mut serials: Vec<String> = v["certificates"].as_array().unwrap().iter().map(|c| c["serial"].as_str().unwrap().to_string()).collect();
    assert_eq!(serials.len(), 4);
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 4, "no serial twice");
}
