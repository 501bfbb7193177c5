//! The README's walk from a ceremony to a sub-CA, a leaf, a revocation and a CRL, run
//! as written (the block between `<!-- ca-walkthrough -->` markers), with `hsm-demo` on
//! PATH, in a fresh directory.

use std::process::Command;

#[test]
fn the_readme_ca_walkthrough_runs_as_shown() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("<!-- ca-walkthrough -->").expect("the walkthrough marker");
    let end = readme.find("<!-- /ca-walkthrough -->").expect("the walkthrough end marker");
    let block = &readme[start..end];
    let script = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_hsm-demo")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("www.pem: OK"), "{stdout}");
    assert!(stdout.contains("refused: the subordinate is revoked"), "{stdout}");
    assert!(stdout.contains("certificate revoked") || stderr.contains("certificate revoked"), "{stdout}{stderr}");
    assert!(stdout.contains("CRL number 1: 1 revoked certificate(s)"), "{stdout}");
    assert!(dir.path().join("issuing-ca-1/ca.db").is_file());
}
