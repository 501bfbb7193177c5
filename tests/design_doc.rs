//! acm-pca-design.md stays complete and true as it is edited: every section of the seed
//! 001 checklist, the hard questions and the PKCS#11 questions are present and not
//! empty; the summary and glossary come first; the hierarchy's path lengths can be
//! issued; the cost arithmetic adds up; the v1 errors a review found stay gone; and the
//! ceremony block of §1.4 runs as printed.

use std::collections::HashMap;

fn document() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/acm-pca-design.md"))
        .expect("acm-pca-design.md exists")
}

/// Level-2 sections by heading, with their body (up to the next level-2 heading).
fn sections(doc: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut current: Option<(String, String)> = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            if let Some((k, v)) = current.take() {
                out.insert(k, v);
            }
            current = Some((h.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((k, v)) = current {
        out.insert(k, v);
    }
    out
}

fn section<'a>(all: &'a HashMap<String, String>, prefix: &str) -> &'a str {
    let (_, body) = all
        .iter()
        .find(|(k, _)| k.starts_with(prefix))
        .unwrap_or_else(|| panic!("section starting {prefix:?} is missing"));
    let words = body.split_whitespace().count();
    assert!(
        words >= 150,
        "section {prefix:?} is too thin ({words} words)"
    );
    body
}

fn has_all(body: &str, what: &str, needles: &[&str]) {
    for n in needles {
        assert!(body.contains(n), "{what}: expected {n:?}");
    }
}

#[test]
fn every_required_section_is_present_and_substantial() {
    let doc = document();
    let all = sections(&doc);
    has_all(
        section(&all, "§0."),
        "§0",
        &[
            "### 0.1",
            "### 0.2",
            "### 0.3",
            "### 0.4",
            "### 0.5 Backup and the second site",
            "### 0.6 The root operations log and the witness sheet",
            "Decision:",
            "80,000",
            "120,000",
        ],
    );
    has_all(
        section(&all, "§1."),
        "§1",
        &["Two trust domains", "Validity periods", "Cost estimate", "$400", "offline roots in practice"],
    );
    has_all(
        section(&all, "§2."),
        "§2",
        &[
            "Device root, workload root",
            "Device issuing CA",
            "Workload issuing CA",
            "Device identity",
            "mTLS server",
            "SVID",
            "template/",
            "pathLen",
        ],
    );
    has_all(
        section(&all, "§3."),
        "§3",
        &[
            "sequenceDiagram",
            "IdempotencyToken",
            "ThrottlingException",
            "Rate limits",
        ],
    );
    has_all(
        section(&all, "§4."),
        "§4",
        &[
            "CRL",
            "OCSP",
            "Serial tracking",
            "audit report",
            "CloudTrail",
        ],
    );
    let s5 = section(&all, "§5.");
    let modes = s5.lines().filter(|l| l.starts_with("### F")).count();
    assert!(
        modes >= 5,
        "§5 needs at least five failure modes, has {modes}"
    );
    for mode in s5.split("### F").skip(1) {
        has_all(
            mode,
            "each failure mode",
            &["Detection", "Runbook", "Recovery time"],
        );
    }
    has_all(s5, "§5", &["Multi-account layout", "Cost model"]);
    has_all(
        section(&all, "§6."),
        "§6",
        &[
            "End-to-end flow",
            "IAM",
            "DynamoDB",
            "SPIRE",
            "Recommendation",
        ],
    );
}

#[test]
fn the_hard_questions_and_pkcs11_questions_are_answered() {
    let doc = document();
    let all = sections(&doc);
    let hard = section(&all, "Hard Questions");
    for q in ["### HQ1", "### HQ2", "### HQ3", "### HQ4"] {
        let body = hard
            .split(q)
            .nth(1)
            .unwrap_or_else(|| panic!("{q} missing"));
        let body = body.split("\n### ").next().unwrap();
        assert!(
            body.split_whitespace().count() >= 80,
            "{q} answer is too thin"
        );
    }
    // The Lambda answer quotes hsm-demo bench figures; the cost answer shows its arithmetic.
    has_all(
        hard,
        "hard questions",
        &[
            "hsm-demo bench",
            "1,000 × $0.75",
            "9,000 × $0.35",
            "$0.058",
            "Secrets Manager",
        ],
    );
    let pkcs11 = section(&all, "PKCS#11 Questions");
    has_all(
        pkcs11,
        "PKCS#11 questions",
        &[
            "### PQ1",
            "### PQ2",
            "### PQ3",
            "### PQ4",
            "CKA_EXTRACTABLE",
            "CKA_SENSITIVE",
            "token object",
            "C_Sign",
        ],
    );
}

#[test]
fn the_cost_arithmetic_in_the_text_adds_up() {
    // The tiered certificate prices as the document states them [P], in cents.
    let tiers = |n: u64| -> u64 {
        let first = n.min(1_000) * 75;
        let second = n.saturating_sub(1_000).min(9_000) * 35;
        let rest = n.saturating_sub(10_000) / 10; // $0.001 each: a tenth of a cent
        first + second + rest
    };
    let doc = document();
    // The fee is the issuing principal's account's, at its own tiers: 10,000 device
    // certificates in the provisioning account, 40 SPIRE intermediates (2 servers, a
    // 72-hour CA renewed every 36 hours) in the workloads account.
    let devices = tiers(10_000);
    assert_eq!(devices, 390_000);
    assert!(doc.contains(&format!("**{}**", dollars(devices))), "{}", dollars(devices));
    let spire_count = 2 * 30 * 24 / 36;
    assert_eq!(spire_count, 40);
    let spire = tiers(spire_count);
    assert!(doc.contains(&format!("40 × $0.75 = **{}**", dollars(spire))), "{}", dollars(spire));
    let certs = devices + spire;
    assert!(doc.contains(&dollars(certs)), "{}", dollars(certs));
    // Hybrid: three Private CA CAs; all-Private-CA adds the two roots.
    let hybrid = 3 * 40_000 + certs;
    assert!(doc.contains(&format!("**{} per month**", dollars(hybrid))), "{}", dollars(hybrid));
    assert!(doc.contains(&dollars(5 * 40_000 + certs)));
    assert!(doc.contains(&format!("{} a year", dollars(hybrid * 12))));
    // The fleet 10,000 a month serves, renewing at two thirds of a year (8 months).
    assert!(doc.contains("10,000 × 8 =\n**80,000** devices") || doc.contains("10,000 × 8 = **80,000** devices"));
    // HQ2: short-lived mode for the 80,000-device fleet, six certificates a month each.
    let short_lived = 80_000 * 6 * 58 / 10 + 5_000; // $0.058 each, in cents, + $50
    assert!(doc.contains(&format!("**{} a month**", dollars(short_lived).trim_end_matches(".00"))));
    // CloudHSM, like for like: two HSMs for a month.
    assert!(doc.contains("2 × $1.60 × 730 h = **$2,336 a month**"));
    // Re-enrollment through the queue.
    assert_eq!(80_000 / 20, 4_000);
    assert_eq!((4_000 + 30) / 60, 67);
    assert!(doc.contains("80,000 / 20 = 4,000 s = **67 minutes**"));
}

/// Cents as `$1,234.56`.
fn dollars(cents: u64) -> String {
    let whole = cents / 100;
    let mut digits = whole.to_string();
    let mut out = String::new();
    while digits.len() > 3 {
        let tail = digits.split_off(digits.len() - 3);
        out = format!(",{tail}{out}");
    }
    format!("${digits}{out}.{:02}", cents % 100)
}

#[test]
fn the_summary_and_glossary_come_first() {
    let doc = document();
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(headings[0], "## Summary");
    assert_eq!(headings[1], "## Glossary");
    let all = sections(&doc);
    let summary = &all["Summary"];
    has_all(summary, "summary", &["**Decision.**", "**Hierarchy**", "**Cost**", "**Top risks"]);
    let glossary = &all["Glossary"];
    has_all(
        glossary,
        "glossary",
        &["**HSM**", "**PKCS#11**", "**SO / CU / admin**", "**pathLen**", "**SAN**", "**SPIFFE ID, SVID**", "**CRL / OCSP**"],
    );
}

/// RFC 5280 §6.1.4 (l), (m): no CA has more CA levels below it (in the table's
/// hierarchy) than its pathLenConstraint allows; the table states each issuer's
/// constraint as the issuer's row does.
#[test]
fn every_path_length_in_the_hierarchy_can_be_issued() {
    let doc = document();
    let table = doc
        .split("<!-- path-lengths -->")
        .nth(1)
        .and_then(|t| t.split("<!-- /path-lengths -->").next())
        .expect("the path-lengths table");
    let limit = |v: &str| -> Option<u32> { if v == "none" { None } else { Some(v.parse().expect("a number or none")) } };
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| CA ") && !l.starts_with("| ---"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert!(rows.len() >= 5, "{rows:?}");
    fn levels_below(rows: &[Vec<&str>], ca: &str) -> u32 {
        rows.iter().filter(|r| r[1] == ca && r[0] != ca).map(|r| 1 + levels_below(rows, r[0])).max().unwrap_or(0)
    }
    for r in &rows {
        let (ca, issuer, own, issuers) = (r[0], r[1], limit(r[2]), limit(r[3]));
        if issuer != "itself" {
            let row = rows.iter().find(|x| x[0] == issuer).unwrap_or_else(|| panic!("{ca}: issuer {issuer} not in the table"));
            assert_eq!(limit(row[2]), issuers, "{ca}: the issuer's constraint as the table states it");
        }
        // The SPIRE intermediate issues end-entity certificates only: CA levels below
        // it are the table's.
        if let Some(p) = own {
            let below = levels_below(&rows, ca);
            assert!(below <= p, "{ca}: {below} CA level(s) below a pathLen of {p}");
        }
    }
}

/// The path-length rule as the document states it (review point 9): a child's
/// constraint need not be below its issuer's; `openssl verify` accepts root -> A
/// (pathLen 1) -> B (pathLen 1) -> leaf, and refuses a second CA below B's pathLen 0.
#[test]
fn openssl_accepts_a_child_whose_path_length_equals_its_issuers() {
    let dir = tempfile::tempdir().unwrap();
    let sh = |script: &str| {
        let out = std::process::Command::new("bash").args(["-euo", "pipefail", "-c", script]).current_dir(dir.path()).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (made, log) = sh(r#"
        ca() { printf '[x]\nbasicConstraints=critical,CA:TRUE%s\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$1" > "$2.ext"; }
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -subj /CN=root -days 30 -out root.pem 2>/dev/null
        for n in a b c; do openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -subj /CN=$n -out $n.csr 2>/dev/null; done
        ca ',pathlen:1' a; ca ',pathlen:1' b; ca ',pathlen:0' c
        openssl x509 -req -in a.csr -CA root.pem -CAkey root.key -days 10 -extfile a.ext -extensions x -out a.pem 2>/dev/null
        openssl x509 -req -in b.csr -CA a.pem -CAkey a.key -days 10 -extfile b.ext -extensions x -out b.pem 2>/dev/null
        openssl x509 -req -in c.csr -CA b.pem -CAkey b.key -days 10 -extfile c.ext -extensions x -out c.pem 2>/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -subj /CN=leaf -out leaf.csr 2>/dev/null
        openssl x509 -req -in leaf.csr -CA b.pem -CAkey b.key -days 5 -out leaf.pem 2>/dev/null
        openssl x509 -req -in leaf.csr -CA c.pem -CAkey c.key -days 5 -out deep.pem 2>/dev/null
    "#);
    assert!(made, "{log}");
    let (ok, out) = sh("openssl verify -CAfile root.pem -untrusted a.pem -untrusted b.pem leaf.pem");
    assert!(ok && out.contains("leaf.pem: OK"), "{out}");
    // One CA too deep: A's pathLen 1 allows only B below it.
    let (ok, out) = sh("openssl verify -CAfile root.pem -untrusted a.pem -untrusted b.pem -untrusted c.pem deep.pem");
    assert!(!ok && out.contains("path length constraint exceeded"), "{out}");
}

#[test]
fn the_errors_a_review_found_in_v1_stay_gone() {
    let doc = document();
    for gone in ["PLATFORM.md", "5.8 times", "$42", "13 months max", "under 2 hours", "up to 30 s", "PathLen1/V1"] {
        assert!(!doc.contains(gone), "v1 text is back: {gone:?}");
    }
    let all = sections(&doc);
    let s6 = section(&all, "§6.");
    has_all(s6, "§6 SPIRE role", &["acm-pca:DescribeCertificateAuthority", "refuses a CSR that carries any subjectAltName"]);
    has_all(&doc, "corrections", &["29 seconds", "1 s × 60", "encrypted HSM images", "admin", "only if it is restored"]);
}

/// §1.4's block, run as printed: two roots from two ceremonies, the issuing CAs signed
/// only with two activation shares, a root CRL, and the roots kept apart.
#[test]
fn the_ceremony_block_runs_as_printed() {
    let (work, stdout, stderr) = run_block("hybrid-ceremony");
    for expect in [
        "[Step 3b] Activation quorum created",
        "device-ca.pem: OK",
        "(the device root does not vouch for the workload CA)",
        "7 ARLs (CA certificates only) of CA /C=US/O=Leo/CN=Leo Device Root CA in crls:",
        "exit 2",
    ] {
        assert!(stdout.contains(expect), "{expect:?} not in:\n{stdout}");
    }
    assert!(stderr.contains("1 distinct share(s) given; this quorum needs 2 of 3"), "{stderr}");
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(work.path().join("workload-ca.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE, pathlen:1") && text.contains("URI:http://crl.pki.leo.example/workload-root.crl"), "{text}");
}

/// A `<!-- name -->` sh block of the document, run as printed in a fresh directory.
fn run_block(name: &str) -> (tempfile::TempDir, String, String) {
    let doc = document();
    let block = doc
        .split(&format!("<!-- {name} -->"))
        .nth(1)
        .and_then(|b| b.split(&format!("<!-- /{name} -->")).next())
        .unwrap_or_else(|| panic!("the {name} block"));
    let script = block.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh block");
    let work = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_hsm-demo")).parent().unwrap().to_path_buf();
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env_clear()
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("HOME", work.path())
        .env("WORK", work.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    (work, stdout, stderr)
}

/// §0.5's rehearsal, as printed: the root and its wrapped copy from the ceremony in one
/// HSM, restored by three backup custodians into another and proven under the original
/// certificate, two shares refused, the copy destroyed, and the log of both verified.
#[test]
fn the_backup_rehearsal_runs_as_printed() {
    let (work, stdout, stderr) = run_block("backup-rehearsal");
    for expect in [
        "[Step 2b] Backup: the root key wrapped",
        "Restored key 'device-root-key' (ec-p384) into token 'site-b-spare'",
        "proof:    a fresh challenge signed in the token verifies under the original public key",
        "exit 2",
        "Deleted key pair 'device-root-key'",
        "ok    1 checkpoint signature(s) verify under the CA certificate",
        "Head (for the witness sheet): entry ",
    ] {
        assert!(stdout.contains(expect), "{expect:?} not in:\n{stdout}\n{stderr}");
    }
    assert!(stderr.contains("this quorum needs 3 of 5"), "{stderr}");
    let log = std::fs::read_to_string(work.path().join("device-root/audit.log")).unwrap();
    assert!(log.contains("\"command\":\"key-restore\"") && log.contains("\"note\":\"yearly rehearsal\"") && log.contains("\"command\":\"delete-key\""), "{log}");
}

/// The eleven points of the review of v2, each answered where the changelog says, and
/// the v2 text they found wrong gone.
#[test]
fn the_review_of_v2_is_answered_point_by_point() {
    let doc = document();
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(*headings.last().unwrap(), "## Changelog", "the changelog is last");
    assert!(headings.contains(&"## Appendix A. PKCS#11 details of the custody model"));
    let all = sections(&doc);
    let log = &all["Changelog"];
    for n in 1..=11 {
        assert!(log.contains(&format!("\n| {n}. ")), "changelog: review point {n}");
    }
    // 1. backup at a second site, rehearsed; 2. custody: the PIN quorum's limit, a
    // named FIPS level, ceremony practice, cryptoperiods, a second signature.
    let s0 = &all["§0. Key Custody Model"];
    has_all(s0, "§0 custody", &["RFC 3647 §6.2.4", "3-of-5", "backup site", "What a PIN-based quorum cannot protect against", "FIPS 140-3 Level 3", "witness sheet", "auditor"]);
    let s1 = &all["§1. CA Hierarchy Design"];
    has_all(s1, "§1 practice", &["### 1.5 Ceremony practice", "ceremony administrator", "custodians", "witness", "auditor", "--dry-run", "sha256sum", "video-recorded", "SP 800-57", "CP/CPS", "--cross-sign"]);
    // 3. the trade-off picked; misuse vs theft; the server certificates' issuer.
    has_all(s0, "§0.4", &["We revoke at once and fail closed", "Unauthorized issuance with the key safe", "Fleet server certificates", "device root as trust anchor"]);
    // 4, 5, 6: the workload path's Region, sharing and IAM, costs like for like.
    let s5 = &all["§5. Failure Mode Analysis"];
    has_all(s5, "F8", &["### F8.", "ca_ttl"]);
    let s6 = &all["§6. Integration with the Provisioning Service"];
    has_all(s6, "§6 IAM", &["AWSRAMSubordinateCACertificatePathLen0IssuanceCertificateAuthority", "customer-managed", "STANDBY_DEVICE_CA_ID", "sqs:ReceiveMessage", "sqs:SendMessage", "no `assume_role_arn`"]);
    assert!(s6.trim_start().starts_with("```"), "§6 opens with its diagram");
    has_all(&doc, "costs", &["incurred in the AWS account from which you", "40 × $0.75", "person-hours", "two HSMs"]);
    // 7, 8, 10: templates, CRL ACL, the smaller points.
    has_all(&all["§2. Certificate Templates"], "§2", &["BlankEndEntityCertificate_APIPassthrough/V1", "keyAgreement", "RFC 5480 §3"]);
    has_all(&all["§4. Revocation and Audit"], "§4", &["S3ObjectAcl=BUCKET_OWNER_FULL_CONTROL", "no event for a CA", "--series 7"]);
    has_all(&all["§3. Issuance API Flow"], "§3", &["participant Q as SQS enrollment queue", "since June 2024", "answered from DynamoDB"]);
    has_all(s6, "§6.4", &["`signing_algorithm` is left out", "must be the last CA in the hierarchy"]);
    // 11. §0 in plain terms: the PKCS#11 vocabulary is in the appendix.
    for term in ["C_InitToken", "C_SetPIN", "CKA_SENSITIVE", "CKA_EXTRACTABLE"] {
        assert!(!s0.contains(term), "§0 still speaks PKCS#11: {term}");
    }
    // The v2 text the review found wrong.
    for gone in [
        "assume_role_arn           =",
        "signing_algorithm         = \"SHA256WITHECDSA\"",
        "120 × $0.001",
        "must be below its\n  issuer's",
        "template `EndEntityClientAuthCertificate_APIPassthrough/V1` [T], SAN set by the API",
        "`Enabled=true`, `ExpirationInDays=7`, `S3BucketName`, `CustomCname",
        "CRL certificate expiry warnings",
        "a planned\n  re-rooting",
    ] {
        assert!(!doc.contains(gone), "v2 text is back: {gone:?}");
    }
}
