//! The seeds' integration sequences, run verbatim through `cargo run` (seed 001 "Key
//! Lifecycle", seed 000 "Full Key Lifecycle") against a fresh SoftHSM2 token store,
//! with the two PIN variables exported as the README says.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Runs a seed script in a scratch directory under target/ (so `cargo run` finds this
/// package and the ceremony's output lands there, not in the source tree).
fn run_seed(script: &str) -> (String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scratch_parent = root.join("target/seed-runs");
    std::fs::create_dir_all(&scratch_parent).unwrap();
    let scratch = tempfile::tempdir_in(&scratch_parent).unwrap();
    let tokens = scratch.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = scratch.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(root.join("tests/seeds").join(script))
        .current_dir(scratch.path())
        .env("SOFTHSM2_CONF", &conf)
        .env("HSM_DEMO_PIN", "123456")
        .env("HSM_DEMO_SO_PIN", "12345678")
        .env("CARGO_TERM_QUIET", "true")
        .env_remove("HSM_DEMO_MODULE")
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ceremony_output(scratch.path());
    (stdout, stderr)
}

fn assert_ceremony_output(dir: &Path) {
    let ceremonies: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ceremony-"))
        .collect();
    assert_eq!(ceremonies.len(), 1, "one ceremony directory");
    assert!(ceremonies[0].path().join("root-ca.pem").exists());
}

fn assert_lines_in_order(text: &str, expected: &[&str]) {
    let mut rest = text;
    for e in expected {
        let at = rest
            .find(e)
            .unwrap_or_else(|| panic!("missing (in order) {e:?} in:\n{text}"));
        rest = &rest[at + e.len()..];
    }
}

#[test]
fn seed_001_key_lifecycle_runs_verbatim() {
    let (stdout, stderr) = run_seed("seed001.sh");
    assert_lines_in_order(
        &stdout,
        &[
            "token present, initialized",
            "label:        final-test",
            "[Step 1] Key pair generated: label=root-ca-key, algo=EC/P-256",
            "[Step 2] Public key (hex): 04",
            "[Step 3]",
            "[Step 4] Ceremony complete. Store HSM in vault.",
            "Generated ECDSA P-256 key pair, label: service-key",
            "Signature verified OK",
            "tamper exit: 1",
        ],
    );
    assert!(stderr.contains("signature verification failed"), "{stderr}");
}

#[test]
fn seed_000_full_key_lifecycle_runs_verbatim() {
    let (stdout, stderr) = run_seed("seed000.sh");
    assert_lines_in_order(
        &stdout,
        &[
            "label:        test-hsm",
            "[Step 1] Key pair generated: label=root-ca-key, algo=EC/P-256",
            "[Step 4] Ceremony complete. Store HSM in vault.",
            "Signature: 30",
            "Signature verified OK",
            "tamper exit: 1",
        ],
    );
    assert!(stderr.contains("signature verification failed"), "{stderr}");
}
