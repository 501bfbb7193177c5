//! Issuance as a strict gate: every malformed name, subject, key, profile, chain and
//! output is refused with exit 2 and one line naming its rule, before the token signs
//! (a pkcs11-spy log shows no C_Sign), with nothing recorded and nothing written; what
//! is issued passes openssl, pkilint and NSS's vfychain.

mod common;

use std::path::PathBuf;

use common::{fails_with, lint, ok, softhsm_module, spy_calls, SoftHsm, SO_PIN, SPY};
use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Type};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::{X509Extension, X509NameBuilder, X509ReqBuilder};

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// subjectAltName with raw GeneralName entries: (tag, bytes), e.g. 0x82 dNSName.
fn san(entries: &[(u8, &[u8])]) -> X509Extension {
    let names: Vec<u8> = entries.iter().flat_map(|(t, v)| tlv(*t, v)).collect();
    let oid = Asn1Object::from_str("2.5.29.17").unwrap();
    X509Extension::new_from_der(&oid, false, &Asn1OctetString::new_from_bytes(&tlv(0x30, &names)).unwrap()).unwrap()
}

fn p256() -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap()
}

/// A DER request signed by `key`: subject attributes as UTF8Strings, exactly as given
/// (no length table applied), and the extensions.
fn request(key: &PKey<Private>, subject: &[(Nid, &str)], exts: Vec<X509Extension>) -> Vec<u8> {
    let mut name = X509NameBuilder::new().unwrap();
    for (nid, v) in subject {
        let ty = if *nid == Nid::COUNTRYNAME { Asn1Type::PRINTABLESTRING } else { Asn1Type::UTF8STRING };
        name.append_entry_by_nid_with_type(*nid, v, ty).unwrap();
    }
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.set_pubkey(key).unwrap();
    if !exts.is_empty() {
        let mut stack = Stack::new().unwrap();
        for e in exts {
            stack.push(e).unwrap();
        }
        b.add_extensions(&stack).unwrap();
    }
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

/// A P-256 root by ceremony and a subordinate CA (800 days) adopted with ca-init.
fn root_and_sub(hsm: &SoftHsm) {
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["generate-key", "--label", "sub-key"]));
    ok(hsm.cmd().args(["csr", "--label", "sub-key", "--subject", "/C=US/O=Example/CN=Example Issuing CA", "--out", "sub.csr"]));
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "sub.csr", "--profile", "subordinate-ca", "--days", "800", "--out", "sub.pem"]));
    let both = [std::fs::read(hsm.path("sub.pem")).unwrap(), std::fs::read(hsm.path("root/root-ca.pem")).unwrap()].concat();
    hsm.write("sub-chain.pem", both);
    ok(hsm.cmd().args(["ca-init", "--ca", "sub", "--cert", "sub-chain.pem", "--label", "sub-key"]));
}

fn records(hsm: &SoftHsm, ca: &str) -> usize {
    let v: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["list-issued", "--ca", ca, "--json"]))).unwrap();
    v["certificates"].as_array().unwrap().len()
}

/// `issue --ca sub` with `args` through pkcs11-spy, refused with exit 2: its line and
/// the spy log.
fn spied_refusal(hsm: &SoftHsm, args: &[&str]) -> (String, PathBuf) {
    let log = hsm.path("spy.log");
    let _ = std::fs::remove_file(&log);
    let line = fails_with(
        hsm.cmd()
            .env("PKCS11SPY", softhsm_module())
            .env("PKCS11SPY_OUTPUT", &log)
            .args(["--module", SPY, "issue", "--ca", "sub"])
            .args(args),
        2,
    );
    (line, log)
}

/// `issue` of `csr` through pkcs11-spy: refused with exit 2, a line holding every piece
/// of `expect`, no C_Sign in the token, no output.
fn refused_before_signing(hsm: &SoftHsm, csr: &str, profile: &str, expect: &[&str]) {
    let (line, log) = spied_refusal(hsm, &["--csr", csr, "--profile", profile, "--out", "refused.pem"]);
    for e in expect {
        assert!(line.contains(e), "{csr}: {line:?} lacks {e:?}");
    }
    assert!(!line.trim_end().chars().any(|c| c.is_control()), "{csr}: a control character reached the terminal: {line:?}");
    assert!(line.ends_with("nothing was recorded or written") || line.contains("nothing"), "{csr}: {line}");
    assert_eq!(spy_calls(&log, "C_Sign"), 0, "{csr}: the token signed");
    assert!(!hsm.path("refused.pem").exists());
}

#[test]
fn malformed_names_are_refused_by_rule_before_the_token_signs() {
    let hsm = SoftHsm::new();
    root_and_sub(&hsm);
    let key = p256();
    let long_label = "a".repeat(300);
    let dns: Vec<(&[u8], &str, &str)> = vec![
        (b"www.example.com\0.evil.com", "dns-name", "www.example.com\\x00.evil.com"),
        (b"a\r\nb.example.com", "dns-name", "a\\r\\nb.example.com"),
        (b"a b.example.com", "dns-name", "holds ' '"),
        ("bücher.example".as_bytes(), "dns-name", "A-label"),
        (b"*", "dns-wildcard", "fewer than two labels"),
        (b"*.*.x", "dns-wildcard", "other than as the whole leftmost label"),
        (b"www.*.x", "dns-wildcard", "other than as the whole leftmost label"),
        (b"192.0.2.7", "dns-name", "is an IP address"),
        (b"a..example.com", "dns-name", "empty label"),
        (long_label.as_bytes(), "dns-name", "characters"),
        (b"", "dns-name", "is empty"),
        (b"_", "dns-name", "holds '_'"),
        (b"a\tb.example.com", "dns-name", "a\\tb.example.com"),
        (b"-a.example.com", "dns-name", "hyphen"),
        (b"a.example.", "dns-name", "empty label"),
    ];
    for (i, (name, rule, shown)) in dns.iter().enumerate() {
        let csr = format!("dns{i}.csr");
        hsm.write(&csr, request(&key, &[(Nid::COMMONNAME, "x")], vec![san(&[(0x82, name)])]));
        refused_before_signing(&hsm, &csr, "tls-server", &[&format!("refused by rule '{rule}'"), shown]);
    }
    let emails: Vec<(&[u8], &str)> = vec![
        (b"alice@example.com\r\nBcc: eve@evil.com", "\\r\\nBcc"),
        (b"al\0ice@example.com", "al\\x00ice"),
        (b"alice.example.com", "has no '@'"),
        (b"", "has no '@'"),
    ];
    for (i, (mail, shown)) in emails.iter().enumerate() {
        let csr = format!("mail{i}.csr");
        hsm.write(&csr, request(&key, &[(Nid::COMMONNAME, "alice")], vec![san(&[(0x81, mail)])]));
        refused_before_signing(&hsm, &csr, "tls-client", &["refused by rule 'rfc822-name'", shown]);
    }
    // An iPAddress of 5 bytes, two subjectAltName extensions, trailing bytes after DER.
    hsm.write("ip5.csr", request(&key, &[(Nid::COMMONNAME, "x")], vec![san(&[(0x87, &[192, 0, 2, 7, 1])])]));
    refused_before_signing(&hsm, "ip5.csr", "tls-server", &["refused by rule 'ip-address'", "5 bytes"]);
    hsm.write(
        "two.csr",
        request(&key, &[(Nid::COMMONNAME, "x")], vec![san(&[(0x82, b"a.example.com")]), san(&[(0x82, b"b.example.com")])]),
    );
    refused_before_signing(&hsm, "two.csr", "tls-server", &["more than once"]);
    let mut garbage = request(&key, &[(Nid::COMMONNAME, "x")], vec![san(&[(0x82, b"ok.example.com")])]);
    garbage.extend(vec![0x42; 4096]);
    hsm.write("garbage.csr", garbage);
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "garbage.csr", "--profile", "tls-server"]), 2);
    assert!(line.contains("4096 bytes follow the request's DER"), "{line}");
    assert_eq!(records(&hsm, "sub"), 0);
    // A wildcard: not on the shipped tls-server; a profile of one's own can take it.
    hsm.write("wild.csr", request(&key, &[(Nid::COMMONNAME, "x")], vec![san(&[(0x82, b"*.example.com")])]));
    refused_before_signing(&hsm, "wild.csr", "tls-server", &["refused by rule 'dns-wildcard'", "which this profile does not issue"]);
    let shipped = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl-conf/profiles/tls-server.cnf")).unwrap();
    hsm.write("wild.cnf", shipped.replace("wildcard       = no", "wildcard       = yes"));
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "wild.csr", "--profile", "./wild.cnf", "--out", "wild.pem"]));
    let v = ok(hsm.tool("openssl").args(["verify", "-CAfile", "root/root-ca.pem", "-untrusted", "sub.pem", "-verify_hostname", "a.example.com", "wild.pem"]));
    assert_eq!(v.trim(), "wild.pem: OK");
    // The valid forms pass: an A-label on tls-server, an email on tls-client.
    hsm.write("good.csr", request(&key, &[(Nid::COMMONNAME, "x")], vec![san(&[(0x82, b"www.example.com"), (0x82, b"xn--bcher-kva.example")])]));
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "good.csr", "--profile", "tls-server", "--out", "good.pem"]));
    hsm.write("mail.csr", request(&key, &[(Nid::COMMONNAME, "alice")], vec![san(&[(0x81, b"alice@example.com")])]));
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "mail.csr", "--profile", "tls-client", "--days", "30", "--out", "mail.pem"]));
    for cert in ["good.pem", "mail.pem"] {
        lint(&hsm, "lint_pkix_cert", &["-s", "WARNING", cert]);
        let v = ok(hsm.tool("openssl").args(["verify", "-CAfile", "root/root-ca.pem", "-untrusted", "sub.pem", cert]));
        assert_eq!(v.trim(), format!("{cert}: OK"));
    }
    assert_eq!(records(&hsm, "sub"), 3);
}

#[test]
fn subjects_and_keys_are_refused_with_plain_words() {
    let hsm = SoftHsm::new();
    root_and_sub(&hsm);
    let key = p256();
    let dns = || vec![san(&[(0x82, b"ok.example.com")])];
    let long = "x".repeat(10_000);
    let subjects: Vec<(Vec<(Nid, &str)>, &str)> = vec![
        (vec![(Nid::COMMONNAME, "a\r\nb")], "CN='a\\r\\nb' holds the control character \\r"),
        (vec![(Nid::COMMONNAME, "a\0b")], "\\x00"),
        (vec![(Nid::COMMONNAME, "a\x1b[31mb")], "\\x1b"),
        (vec![(Nid::COMMONNAME, &long)], "CN is 10000 characters; RFC 5280 allows at most 64"),
        (vec![(Nid::COUNTRYNAME, "USA"), (Nid::COMMONNAME, "x")], "C='USA' is not a two-letter ISO 3166 country code"),
    ];
    for (i, (subject, expect)) in subjects.iter().enumerate() {
        let csr = format!("subject{i}.csr");
        hsm.write(&csr, request(&key, subject, dns()));
        refused_before_signing(&hsm, &csr, "tls-server", &["refused by rule 'subject-attribute'", expect]);
    }
    // RSA exponents 3 and 65535 (odd, below 65537) and a valid proof of possession.
    for e in [3u32, 65535] {
        let rsa = openssl::rsa::Rsa::generate_with_e(2048, &openssl::bn::BigNum::from_u32(e).unwrap()).unwrap();
        let csr = format!("e{e}.csr");
        hsm.write(&csr, request(&PKey::from_rsa(rsa).unwrap(), &[(Nid::COMMONNAME, "x")], dns()));
        refused_before_signing(&hsm, &csr, "tls-server", &["refused by rule 'subject-key'", "exponent"]);
    }
    // An EC key with explicit parameters, P-192 and Ed448, by the openssl CLI.
    ok(hsm.tool("openssl").args(["ecparam", "-name", "prime256v1", "-param_enc", "explicit", "-genkey", "-noout", "-out", "explicit.key"]));
    ok(hsm.tool("openssl").args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-192", "-out", "p192.key"]));
    ok(hsm.tool("openssl").args(["genpkey", "-algorithm", "ED448", "-out", "ed448.key"]));
    for (k, expect) in [("explicit", "explicit curve parameters"), ("p192", "EC curve prime192v1 is not"), ("ed448", "key type ED448 is not")] {
        ok(hsm.tool("openssl").args([
            "req", "-new", "-key", &format!("{k}.key"), "-subj", "/CN=x", "-addext", "subjectAltName=DNS:ok.example.com", "-out", &format!("{k}.csr"),
        ]));
        refused_before_signing(&hsm, &format!("{k}.csr"), "tls-server", &["refused by rule 'subject-key'", expect]);
    }
    // csr refuses the same subject limits on the command line, before the token signs.
    ok(hsm.cmd().args(["generate-key", "--label", "leaf"]));
    let cn65 = format!("/CN={}", "y".repeat(65));
    for (subject, expect) in [(cn65.as_str(), "CN is 65 characters; RFC 5280 allows at most 64"), ("/C=USA/CN=x", "C='USA' is not a two-letter")] {
        let line = fails_with(hsm.cmd().args(["csr", "--label", "leaf", "--subject", subject, "--out", "c.csr"]), 2);
        assert!(line.contains(expect), "{line}");
        assert!(!hsm.path("c.csr").exists());
    }
    // An empty subject: issued with a critical subjectAltName (RFC 5280 §4.2.1.6).
    hsm.write("empty.csr", request(&key, &[], dns()));
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "empty.csr", "--profile", "tls-server", "--out", "empty.pem"]));
    let text = ok(hsm.tool("openssl").args(["x509", "-in", "empty.pem", "-noout", "-text"]));
    assert!(text.contains("X509v3 Subject Alternative Name: critical"), "{text}");
    lint(&hsm, "lint_pkix_cert", &["-s", "WARNING", "empty.pem"]);
    assert_eq!(records(&hsm, "sub"), 1);
    // Nothing shown from a record reaches the terminal raw: an imported subject with ESC.
    hsm.write("index.txt", "V\t351231235959Z\t\t1000\tunknown\t/CN=a\x1b[31mb\n");
    ok(hsm.cmd().args(["ca-init", "--ca", "legacy", "--cert", "root/root-ca.pem", "--label", "root-key", "--import-index", "index.txt"]));
    let listing = ok(hsm.cmd().args(["list-issued", "--ca", "legacy"]));
    assert!(listing.contains("/CN=a\\x1b[31mb") && !listing.contains('\x1b'), "{listing}");
}

#[test]
fn broken_profiles_are_refused_before_any_token_work() {
    let hsm = SoftHsm::new();
    root_and_sub(&hsm);
    ok(hsm.cmd().args(["generate-key", "--label", "leaf"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=leaf.example", "--san", "DNS:leaf.example", "--out", "leaf.csr"]));
    let head = "[ hsm_demo_profile ]\nextensions = ext\nca = no\nsan = dns\n[ ext ]\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n";
    let cases = [
        ("keycertsign.cnf", "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyCertSign\n", "key-usage-ca-only"),
        ("crlsign-nobc.cnf", "keyUsage = critical, cRLSign\n", "key-usage-ca-only"),
        ("nc.cnf", "basicConstraints = critical, CA:FALSE\nnameConstraints = critical, permitted;DNS:.example\n", "name-constraints-ca-only"),
        ("unknown-critical.cnf", "basicConstraints = critical, CA:FALSE\n1.2.3.4 = critical, ASN1:NULL\n", "critical-extension"),
        ("misspelt.cnf", "keyUsage = critical, digitalSignatur\n", "profile-builds"),
        ("maybe.cnf", "basicConstraints = critical, CA:MAYBE\n", "profile-builds"),
    ];
    for (file, body, rule) in cases {
        hsm.write(file, format!("{head}{body}"));
        let (line, log) = spied_refusal(&hsm, &["--csr", "leaf.csr", "--profile", &hsm.path(file).display().to_string()]);
        assert!(line.contains(&format!("refused by rule '{rule}'")), "{file}: {line}");
        assert_eq!(line.trim_end().lines().count(), 1, "{file}: {line}");
        // Refused before the module was even loaded: no PKCS#11 call at all.
        assert_eq!(spy_calls(&log, "C_Login") + spy_calls(&log, "C_Sign"), 0, "{file}");
    }
    assert_eq!(records(&hsm, "sub"), 0);
}

#[test]
fn outputs_crl_windows_imports_chains_and_the_delete_guard() {
    let hsm = SoftHsm::new();
    root_and_sub(&hsm);
    ok(hsm.cmd().args(["generate-key", "--label", "leaf"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=leaf.example", "--san", "DNS:leaf.example", "--out", "leaf.csr"]));
    // --out and --chain the same file: refused before anything, no record, no retry hazard.
    let line = fails_with(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "leaf.csr", "--profile", "tls-server", "--out", "x.pem", "--chain", "./x.pem"]), 2);
    assert!(line.contains("--out and --chain name the same file"), "{line}");
    assert!(!hsm.path("x.pem").exists());
    assert_eq!(records(&hsm, "sub"), 0);
    // crl --days: past the year 9999, and past the CA's notAfter (800 days) unless allowed.
    let line = fails_with(hsm.cmd().args(["crl", "--ca", "sub", "--days", "2915000"]), 2);
    assert!(line.contains("refused by rule 'crl-next-update'") && line.contains("9999"), "{line}");
    let line = fails_with(hsm.cmd().args(["crl", "--ca", "sub", "--days", "900", "--out", "late.crl"]), 2);
    assert!(line.contains("after the CA certificate's notAfter") && line.contains("--allow-beyond-ca"), "{line}");
    assert!(!hsm.path("late.crl").exists());
    ok(hsm.cmd().args(["crl", "--ca", "sub", "--days", "900", "--allow-beyond-ca", "--out", "late.crl"]));
    ok(hsm.cmd().args(["crl", "--ca", "sub", "--days", "7", "--out", "sub.crl"]));
    ok(hsm.tool("openssl").args(["crl", "-in", "sub.crl", "-CAfile", "sub-chain.pem", "-noout"]));
    // An index with serial 00 is refused at import, naming the line.
    hsm.write("zero.txt", "V\t351231235959Z\t\t01\tunknown\t/CN=a\nV\t351231235959Z\t\t00\tunknown\t/CN=b\n");
    let line = fails_with(hsm.cmd().args(["ca-init", "--ca", "z", "--cert", "root/root-ca.pem", "--label", "root-key", "--import-index", "zero.txt"]), 2);
    assert!(line.contains("index line 2: serial 00 is zero") && line.contains("RFC 5280 §4.1.2.2"), "{line}");
    assert!(!hsm.path("z/ca.db").exists());
    // ca-init: a sub-CA without its chain, with the chain in the wrong order, with an
    // unrelated root, with a leaf in it.
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "leaf.csr", "--profile", "tls-server", "--out", "leaf.pem"]));
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "other", "--label", "other-key"]));
    let cat = |name: &str, parts: &[&str]| {
        hsm.write(name, parts.iter().flat_map(|p| std::fs::read(hsm.path(p)).unwrap()).collect::<Vec<u8>>());
    };
    cat("swapped.pem", &["root/root-ca.pem", "sub.pem"]);
    cat("unrelated.pem", &["sub.pem", "other/root-ca.pem"]);
    cat("leafy.pem", &["sub.pem", "leaf.pem", "root/root-ca.pem"]);
    let chains = [
        ("sub.pem", "not self-signed and no chain follows it"),
        ("swapped.pem", "refused by rule 'issuer-chain'"),
        ("unrelated.pem", "is not issued by certificate 2"),
        ("leafy.pem", "is not a CA certificate"),
    ];
    for (file, expect) in chains {
        let line = fails_with(hsm.cmd().args(["ca-init", "--ca", "again", "--cert", file, "--label", "sub-key"]), 2);
        assert!(line.contains(expect), "{file}: {line}");
        assert!(!hsm.path("again/ca.db").exists(), "{file}");
    }
    // delete-key: the key of a CA set up by ca-init is refused; a --ca that does not
    // exist is an error, not a guard switched off.
    let line = fails_with(hsm.cmd().args(["delete-key", "--label", "sub-key", "--ca", "sub", "--confirm", "sub-key"]), 2);
    assert!(line.contains("is the key of the CA whose records are in sub"), "{line}");
    let line = fails_with(hsm.cmd().args(["delete-key", "--label", "sub-key", "--ca", "sbu", "--confirm", "sub-key"]), 2);
    assert!(line.contains("--ca sbu: no such directory"), "{line}");
    ok(hsm.cmd().args(["list-keys"])).contains("sub-key").then_some(()).expect("the key is still there");
}

#[test]
fn ca_validity_is_named_and_rsa_server_keys_get_key_encipherment_that_nss_wants() {
    let hsm = SoftHsm::new();
    root_and_sub(&hsm);
    ok(hsm.cmd().args(["generate-key", "--label", "ec-leaf"]));
    ok(hsm.cmd().args(["generate-key", "--label", "rsa-leaf", "--algo", "rsa-2048"]));
    for (label, csr) in [("ec-leaf", "ec.csr"), ("rsa-leaf", "rsa.csr")] {
        ok(hsm.cmd().args(["csr", "--label", label, "--subject", "/CN=www.example.com", "--san", "DNS:www.example.com", "--out", csr]));
    }
    // The sub-CA expired (900 days on) and not yet valid (2 days back): named as such.
    for (shift, expect) in [("+900 days", "the CA certificate has expired (notAfter"), ("-2 days", "the CA certificate is not yet valid (notBefore")] {
        let mut cmd = hsm.tool("faketime");
        cmd.arg(shift).arg(env!("CARGO_BIN_EXE_hsm-demo")).env("HSM_DEMO_PIN", common::USER_PIN);
        let line = fails_with(cmd.args(["issue", "--ca", "sub", "--csr", "ec.csr", "--profile", "tls-server"]), 2);
        assert!(line.contains("refused by rule 'ca-valid-now'") && line.contains(expect), "{shift}: {line}");
    }
    assert_eq!(records(&hsm, "sub"), 0);
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "ec.csr", "--profile", "tls-server", "--out", "ec.pem"]));
    ok(hsm.cmd().args(["issue", "--ca", "sub", "--csr", "rsa.csr", "--profile", "tls-server", "--out", "rsa.pem"]));
    let ku = |cert: &str| ok(hsm.tool("openssl").args(["x509", "-in", cert, "-noout", "-ext", "keyUsage"]));
    assert!(ku("rsa.pem").contains("Digital Signature, Key Encipherment"), "{}", ku("rsa.pem"));
    assert!(!ku("ec.pem").contains("Key Encipherment"), "{}", ku("ec.pem"));
    for cert in ["ec.pem", "rsa.pem"] {
        lint(&hsm, "lint_pkix_cert", &["-s", "WARNING", cert]);
        lint(&hsm, "lint_pkix_signer_signee_cert_chain", &["-s", "WARNING", "sub.pem", cert]);
        // NSS: the chain to the trusted root, for the TLS server usage.
        let out = hsm
            .tool("vfychain")
            .args(["-a", "-pp", "-u", "1", cert, "sub.pem", "-t", "root/root-ca.pem"])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("Chain is good!"), "{cert}: {text}");
    }
}
