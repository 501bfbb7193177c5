//! acm-pca-design.md stays complete as it is edited: every section of the seed 001
//! checklist, the hard questions and the PKCS#11 questions are present and not empty.

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
        &["Three tiers", "validity", "Cost estimate", "$400"],
    );
    has_all(
        section(&all, "§2."),
        "§2",
        &[
            "Root CA",
            "Intermediate CA",
            "issuing CA",
            "Device identity",
            "mTLS server",
            "mTLS client",
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
    // The tiered certificate prices as the document states them [P].
    let tiers = |n: u64| -> f64 {
        let first = n.min(1_000) as f64 * 0.75;
        let second = n.saturating_sub(1_000).min(9_000) as f64 * 0.35;
        let rest = n.saturating_sub(10_000) as f64 * 0.001;
        first + second + rest
    };
    let doc = document();
    assert_eq!(tiers(10_000), 3_900.0);
    assert!(doc.contains("**$3,900**"));
    // §1.3: 4 CAs + device certificates + SPIRE upstream certificates.
    let total = 4.0 * 400.0 + tiers(10_000) + 120.0 * 0.35;
    assert_eq!(total, 5_542.0);
    assert!(doc.contains("**$5,542 per month**"));
    // §5.2 adds the standby CA.
    assert!(doc.contains(&format!("**${}**", fmt(total + 400.0))));
    // HQ2: short-lived mode, one certificate per identity per month, and six.
    assert!(doc.contains(&format!(
        "**${} a month**",
        fmt(10_000.0 * 0.058 + 50.0 + 400.0)
    )));
    assert!(doc.contains(&format!(
        "**${} a month**",
        fmt(60_000.0 * 0.058 + 50.0 + 400.0)
    )));
}

fn fmt(x: f64) -> String {
    let n = x.round() as u64;
    if n >= 1000 {
        format!("{},{:03}", n / 1000, n % 1000)
    } else {
        n.to_string()
    }
}
