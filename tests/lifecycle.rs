//! The CA's later life (issue 27): the README's rollover walkthrough (two roots
//! cross-signed both ways, a name-constrained workload CA, a leaf both root
//! generations accept, a device name refused before signing and the same certificate
//! crafted with openssl refused by `openssl verify`, six monthly CRLs, the roots'
//! certificates in their tokens), pkilint on what it made, cross-signing rules, the
//! AWS Private CA preflight, ca.cnf defaults, and certificate objects on a module that
//! refuses them.

mod common;

use std::path::Path;

use common::{fails_with, ok, SoftHsm, SO_PIN};

fn pkilint(dir: &Path, tool: &str, args: &[&str]) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pkilint-venv/bin").join(tool);
    let out = std::process::Command::new(bin).arg("lint").args(args).current_dir(dir).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && report.trim().is_empty(), "{tool} {args:?}:\n{report}{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_readme_rollover_walkthrough_runs_as_shown() {
    let script = common::readme_script("<!-- rollover-walkthrough -->", "<!-- /rollover-walkthrough -->");
    let (dir, stdout, stderr) = common::run_script(&script, &[]);
    let d = dir.path();
    // The leaf verifies for a client of either root.
    assert_eq!(stdout.matches("api.pem: OK").count(), 2, "{stdout}");
    // The device name: refused by hsm-demo before signing, refused by openssl when
    // signed behind its back.
    assert!(stdout.contains("refused: outside the workload CA's name constraints"), "{stdout}");
    assert!(stderr.contains("refused by rule 'name-constraints'") && stderr.contains("DNS:cam-7.devices.example.net"), "{stderr}");
    assert!(stderr.contains("permitted subtree violation") && stdout.contains("openssl verify refuses the crafted certificate"), "{stdout}{stderr}");
    assert!(!std::fs::read_to_string(d.join("workload-ca/audit.log")).unwrap().contains("cam-7"), "a refused request leaves no entry");
    // The cross-certificates: the other root's subject, key and SKI; basicConstraints as
    // the original (no pathLen); issued by the other root.
    for (cross, original, issuer) in [("2026-by-2016.pem", "root-2026/root-ca.pem", "2016"), ("2016-by-2026.pem", "root-2016/root-ca.pem", "2026")] {
        let text = |f: &str, what: &str| ok(common::Command::new("openssl").current_dir(d).args(["x509", "-in", f, "-noout", what]));
        assert_eq!(text(cross, "-subject"), text(original, "-subject"));
        assert_eq!(text(cross, "-pubkey"), text(original, "-pubkey"));
        let ext = |f: &str| ok(common::Command::new("openssl").current_dir(d).args(["x509", "-in", f, "-noout", "-ext", "subjectKeyIdentifier,basicConstraints"]));
        assert_eq!(ext(cross), ext(original));
        assert!(text(cross, "-issuer").contains(&format!("Example Root CA {issuer}")));
    }
    // The workload CA: critical nameConstraints, CRL DP and AIA from ca.cnf; lints clean.
    let wl = ok(common::Command::new("openssl").current_dir(d).args(["x509", "-in", "workload-ca.pem", "-noout", "-text"]));
    assert!(wl.contains("X509v3 Name Constraints: critical") && wl.contains("DNS:svc.example.com") && wl.contains("URI:prod.example.com"), "{wl}");
    assert!(wl.contains("URI:http://pki.example.com/root-2026.crl") && wl.contains("CA Issuers - URI:http://pki.example.com/root-2026.cer"), "{wl}");
    pkilint(d, "lint_pkix_cert", &["-s", "WARNING", "workload-ca.pem"]);
    pkilint(d, "lint_pkix_cert", &["-s", "WARNING", "2026-by-2016.pem"]);
    // Six CRLs: numbers 1..6, overlapping monthly windows, each verified by openssl
    // (stderr) and clean under pkilint as CRL and as ARL.
    assert_eq!(stderr.matches("verify OK").count(), 6, "{stderr}");
    let mut windows = Vec::new();
    for n in 1..=6 {
        let f = format!("crls/crl-{n}.pem");
        let text = ok(common::Command::new("openssl").current_dir(d).args(["crl", "-in", &f, "-noout", "-text"]));
        assert!(text.contains(&format!("X509v3 CRL Number: \n                {n}")), "{text}");
        assert!(text.contains("Issuing Distribution Point: critical") && text.contains("URI:http://pki.example.com/root-2026.crl") && text.contains("Only CA Certificates"), "{text}");
        let date = |flag: &str| {
            let out = ok(common::Command::new("openssl").current_dir(d).args(["crl", "-in", &f, "-noout", flag]));
            let when = out.trim().split_once('=').unwrap().1.to_string();
            let epoch = ok(common::Command::new("date").args(["-u", "-d", &when, "+%s"]));
            epoch.trim().parse::<i64>().unwrap()
        };
        windows.push((date("-lastupdate"), date("-nextupdate")));
        pkilint(d, "lint_crl", &["-t", "CRL", "-p", "PKIX", "-s", "WARNING", &f]);
        pkilint(d, "lint_crl", &["-t", "ARL", "-p", "PKIX", "-s", "WARNING", &f]);
    }
    for w in windows.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 30 * 86_400, "{windows:?}");
        assert!(w[1].0 < w[0].1, "windows overlap: {windows:?}");
    }
    // The root certificate, from the token, by URI; p11tool finds it too.
    assert!(stdout.contains("Total found: 1") && stdout.contains("-----BEGIN CERTIFICATE-----"), "{stdout}");
    let certs = ok(common::Command::new("p11tool")
        .current_dir(d)
        .env("SOFTHSM2_CONF", d.join("softhsm2.conf"))
        .args(["--provider", &common::softhsm_module(), "--list-all-certs", "pkcs11:token=vault-2026"]));
    assert!(certs.contains("object=root-2026;type=cert") && certs.contains("object=workload-ca;type=cert"), "{certs}");
    assert!(stdout.contains("ok    3 checkpoint signature(s) verify under the CA certificate"), "{stdout}");
}

#[test]
fn cross_signing_asks_for_proof_and_keeps_the_original_path_length() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["generate-key", "--label", "sub"]));
    ok(hsm.cmd().args(["csr", "--label", "sub", "--subject", "/O=Example/CN=Sub", "--out", "sub.csr"]));
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "sub.csr", "--profile", "subordinate-ca", "--path-len", "0", "--out", "sub.pem"]));
    // Another root, to cross-sign the subordinate.
    hsm.write("other.cnf", std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openssl-conf/root-ca.cnf")).unwrap().replace("CN = hsm-demo Root CA", "CN = Other Root"));
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--config", "other.cnf", "--out", "other", "--label", "other-key"]));
    // Not self-signed: its signature proves nothing of its key; a request from its
    // key's holders does.
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "other", "--cross-sign", "sub.pem", "--profile", "subordinate-ca"]), 2);
    assert!(line.contains("refused by rule 'proof of possession'") && line.contains("csr --from-cert"), "{line}");
    let line = fails_with(hsm.cmd().args(["csr", "--label", "root-key", "--from-cert", "sub.pem"]), 2);
    assert!(line.contains("its public key is not the token key's"), "{line}");
    ok(hsm.cmd().args(["csr", "--label", "sub", "--from-cert", "sub.pem", "--out", "cross.csr"]));
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "other", "--cross-sign", "sub.pem", "--csr", "sub.csr", "--profile", "tls-server"]), 2);
    assert!(line.contains("refused by rule 'cross-sign'"), "{line}");
    let out = ok(hsm.cmd().args(["issue", "--ca", "other", "--cross-sign", "sub.pem", "--csr", "cross.csr", "--profile", "subordinate-ca", "--out", "sub-by-other.pem"]));
    assert!(out.contains("SKI = the cross-signed certificate's"), "{out}");
    let bc = ok(hsm.tool("openssl").args(["x509", "-in", "sub-by-other.pem", "-noout", "-ext", "basicConstraints,subjectKeyIdentifier"]));
    let orig = ok(hsm.tool("openssl").args(["x509", "-in", "sub.pem", "-noout", "-ext", "basicConstraints,subjectKeyIdentifier"]));
    assert_eq!(bc, orig);
    assert!(bc.contains("pathlen:0"), "{bc}");
    // A FIFO where a file is named is refused at once, before anything happens (it
    // would wait for a writer forever): the certificate to cross-sign, the request,
    // --from-cert, the CA directory's ca.cnf.
    let fifo = hsm.path("fifo.pem");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let quick = || {
        let mut c = hsm.cmd();
        c.timeout(std::time::Duration::from_secs(30));
        c
    };
    for (args, what) in [
        (&["issue", "--ca", "other", "--cross-sign", "fifo.pem", "--profile", "subordinate-ca"][..], "--cross-sign fifo.pem"),
        (&["issue", "--ca", "other", "--csr", "fifo.pem", "--profile", "subordinate-ca"][..], "--csr fifo.pem"),
        (&["csr", "--label", "sub", "--from-cert", "fifo.pem"][..], "--from-cert fifo.pem"),
    ] {
        let line = fails_with(quick().args(args), 2);
        assert!(line.contains(&format!("{what}: not a regular file")), "{line}");
    }
    assert!(std::process::Command::new("mkfifo").arg(hsm.path("other/ca.cnf")).status().unwrap().success());
    let line = fails_with(quick().args(["issue", "--ca", "other", "--cross-sign", "sub.pem", "--csr", "cross.csr", "--profile", "subordinate-ca"]), 2);
    assert!(line.contains("ca.cnf: not a regular file"), "{line}");
    std::fs::remove_file(hsm.path("other/ca.cnf")).unwrap();
    // The log records what was cross-signed.
    let log = std::fs::read_to_string(hsm.path("other/audit.log")).unwrap();
    assert!(log.contains("\"cross_signed_sha256\""), "{log}");
    ok(hsm.cmd().args(["verify-audit", "other"]));
}

#[test]
fn the_aws_preflight_names_the_rule_and_ca_cnf_defaults_apply_without_flags() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["generate-key", "--label", "pca"]));
    ok(hsm.cmd().args(["csr", "--label", "pca", "--subject", "/C=US/O=Example/CN=PCA", "--out", "pca.csr"]));
    let profile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openssl-conf/profiles/subordinate-ca.cnf")).unwrap();
    hsm.write("aia.cnf", profile.replace("authorityKeyIdentifier = keyid:always", "authorityKeyIdentifier = keyid:always\nauthorityInfoAccess = critical, caIssuers;URI:http://pki.example.com/root.cer"));
    let before = std::fs::read(hsm.path("root/audit.log")).ok();
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "root", "--csr", "pca.csr", "--profile", "./aia.cnf", "--target", "aws-pca"]), 2);
    assert!(line.contains("refused by rule 'aws-pca-critical-extensions'") && line.contains("authorityInfoAccess") && line.contains("API_ImportCertificateAuthorityCertificate.html"), "{line}");
    assert_eq!(std::fs::read(hsm.path("root/audit.log")).ok(), before, "nothing recorded");
    // A profile naming the target gets the check, with a note.
    hsm.write("pca.cnf", profile.replace("san_required = no", "san_required = no\ntarget       = aws-pca"));
    let out = hsm.cmd().args(["issue", "--ca", "root", "--csr", "pca.csr", "--profile", "./pca.cnf", "--out", "pca.pem"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("names target aws-pca"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("AWS Private CA's import rules"));
    // ca.cnf: its defaults on what the CA issues, with no flag.
    hsm.write("root/ca.cnf", "[ hsm_demo_ca ]\nissued_extensions = issued_ext\nsubordinate_extensions = sub_ext\n[ issued_ext ]\ncrlDistributionPoints = URI:http://pki.example.com/root.crl\n[ sub_ext ]\nnameConstraints = critical, permitted;DNS:.example.com\n");
    ok(hsm.cmd().args(["generate-key", "--label", "sub2"]));
    ok(hsm.cmd().args(["csr", "--label", "sub2", "--subject", "/O=Example/CN=Sub 2", "--out", "sub2.csr"]));
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "sub2.csr", "--profile", "subordinate-ca", "--out", "sub2.pem"]));
    let text = ok(hsm.tool("openssl").args(["x509", "-in", "sub2.pem", "-noout", "-text"]));
    assert!(text.contains("URI:http://pki.example.com/root.crl") && text.contains("DNS:.example.com"), "{text}");
    // A bad subtree is refused before anything.
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "root", "--csr", "sub2.csr", "--profile", "subordinate-ca", "--permit", "URI:spiffe://td/path"]), 2);
    assert!(line.contains("a URI constraint is a host"), "{line}");
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "root", "--csr", "pca.csr", "--profile", "tls-server", "--permit", "DNS:.example.com"]), 2);
    assert!(line.contains("apply to CA profiles"), "{line}");
}

#[test]
fn certificates_live_beside_their_keys_and_a_module_that_refuses_them_costs_one_line() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    let keys: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["list-keys", "--json"]))).unwrap();
    let root = keys["keys"].as_array().unwrap().iter().find(|k| k["class"] == "private" && k["label"] == "root-key").unwrap();
    let uri = root["certificates"][0]["uri"].as_str().unwrap();
    assert!(uri.ends_with("object=root-key;type=cert"), "{uri}");
    let objects = ok(hsm.pkcs11_tool().args(["--list-objects", "--type", "cert"]));
    assert!(objects.contains("label:      root-key"), "{objects}");
    // ca-init stores a CA's certificate (a public object: no PIN needed).
    ok(hsm.cmd().args(["generate-key", "--label", "sub"]));
    ok(hsm.cmd().args(["csr", "--label", "sub", "--subject", "/O=Example/CN=Sub", "--out", "sub.csr"]));
    ok(hsm.cmd().args(["--module", &common::softhsm_module(), "issue", "--ca", "root", "--csr", "sub.csr", "--profile", "subordinate-ca", "--out", "sub.pem", "--chain", "chain.pem"]));
    let out = ok(hsm.cmd().args(["delete-key", "--label", "sub", "--confirm", "sub"]));
    assert!(out.contains("and its 1 certificate object(s)"), "{out}");
    assert!(!ok(hsm.pkcs11_tool().args(["--list-objects", "--type", "cert"])).contains("label:      sub"));
    // A module that refuses certificate objects: one line, everything else as usual.
    let fault = hsm.fault_module("refuse-certificates");
    ok(hsm.cmd().args(["--module", fault.to_str().unwrap(), "generate-key", "--label", "sub2"]));
    ok(hsm.cmd().args(["csr", "--label", "sub2", "--subject", "/O=Example/CN=Sub 2", "--out", "sub2.csr"]));
    let out = hsm.cmd().args(["--module", fault.to_str().unwrap(), "issue", "--ca", "root", "--csr", "sub2.csr", "--profile", "subordinate-ca", "--out", "sub2.pem"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the certificate was not stored in the token") && err.contains("CKR_TEMPLATE_INCONSISTENT"), "{err}");
    ok(hsm.tool("openssl").args(["verify", "-CAfile", "root/root-ca.pem", "sub2.pem"]));
    ok(hsm.cmd().args(["verify-audit", "root"]));
}
