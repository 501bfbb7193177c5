//! The README's walk from a ceremony to a sub-CA, a leaf, a revocation and a CRL, run
//! as written (the block between `<!-- ca-walkthrough -->` markers), with `hsm-demo` on
//! PATH, in a fresh directory.

mod common;

#[test]
fn the_readme_ca_walkthrough_runs_as_shown() {
    let script = common::readme_script("<!-- ca-walkthrough -->", "<!-- /ca-walkthrough -->");
    let (dir, stdout, stderr) = common::run_script(&script, &[]);
    assert!(stdout.contains("www.pem: OK"), "{stdout}");
    assert!(stdout.contains("refused: the subordinate is revoked"), "{stdout}");
    assert!(stdout.contains("certificate revoked") || stderr.contains("certificate revoked"), "{stdout}{stderr}");
    assert!(stdout.contains("ARL number 1: 1 revoked certificate(s)"), "{stdout}");
    assert!(dir.path().join("issuing-ca-1/ca.db").is_file());
    // The root's log: ceremony adoption, the sub-CA, the revocation, the CRL; three
    // checkpoints, the last one checked by the openssl CLI.
    assert!(stdout.contains("ok    3 checkpoint signature(s) verify under the CA certificate"), "{stdout}");
    assert!(stdout.contains("ok    ca.db: its 1 certificate record(s) and 1 CRL record(s) are what the entries say"), "{stdout}");
    let log = std::fs::read_to_string(dir.path().join("root/audit.log")).unwrap();
    let head = format!("Head (for the witness sheet): entry {} sha256 ", log.lines().count());
    assert!(stdout.contains(&head), "{stdout}");
    assert!(stdout.contains("Verified OK"), "{stdout}");
}
