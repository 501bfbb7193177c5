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
    assert!(stdout.contains("CRL number 1: 1 revoked certificate(s)"), "{stdout}");
    assert!(dir.path().join("issuing-ca-1/ca.db").is_file());
}
