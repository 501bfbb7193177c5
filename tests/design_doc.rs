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
            "Decision:",
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
    // 10,000 device certificates and 120 SPIRE intermediates share the month's tiers.
    let certs = tiers(10_000 + 120);
    assert_eq!(certs, 390_012);
    assert!(doc.contains(&format!("**{}**", dollars(certs))), "{}", dollars(certs));
    // Hybrid: three Private CA CAs; all-Private-CA adds the two roots.
    let hybrid = 3 * 40_000 + certs;
    assert!(doc.contains(&format!("**{} per month**", dollars(hybrid))), "{}", dollars(hybrid));
    assert!(doc.contains(&dollars(5 * 40_000 + certs)));
    assert!(doc.contains(&format!("{} a year", dollars(hybrid * 12))));
    // HQ2: short-lived mode for the 120,000-device fleet, six certificates a month each.
    let short_lived = 120_000 * 6 * 58 / 10 + 5_000; // $0.058 each, in cents, + $50
    assert!(doc.contains(&format!("**{} a month**", dollars(short_lived).trim_end_matches(".00"))));
    // CloudHSM, like for like: two HSMs for a month.
    assert!(doc.contains("2 × $1.60 × 730 h = **$2,336 a month**"));
    // Re-enrollment through the queue.
    assert_eq!(120_000 / 20, 6_000);
    assert!(doc.contains("120,000 / 20 = 6,000 s = **100 minutes**"));
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

/// RFC 5280 §6.1.4 (l), (m): every CA's pathLenConstraint is below its issuer's.
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
    for r in &rows {
        let (ca, issuer, own, issuers) = (r[0], r[1], limit(r[2]), limit(r[3]));
        if issuer == "itself" {
            continue;
        }
        let row = rows.iter().find(|x| x[0] == issuer).unwrap_or_else(|| panic!("{ca}: issuer {issuer} not in the table"));
        assert_eq!(limit(row[2]), issuers, "{ca}: the issuer's constraint as the table states it");
        if let Some(i) = issuers {
            assert!(own.is_some_and(|o| o < i), "{ca}: pathLen {own:?} is not below its issuer's {i}");
        }
    }
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
    let doc = document();
    let block = doc
        .split("<!-- hybrid-ceremony -->")
        .nth(1)
        .and_then(|b| b.split("<!-- /hybrid-ceremony -->").next())
        .expect("the hybrid-ceremony block");
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
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for expect in [
        "[Step 3b] Activation quorum created",
        "device-ca.pem: OK",
        "(the device root does not vouch for the workload CA)",
        "ARL number 1: 0 revoked certificate(s), next update in 180 days",
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
