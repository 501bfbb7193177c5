//! `sign` over many files in one process: one output per input, every signature checked
//! (here again by the openssl CLI), nothing overwritten, and a refused batch writes
//! nothing at all.

mod common;

use common::{fails_with, ok, SoftHsm};

fn files(hsm: &SoftHsm, n: usize) -> Vec<String> {
    std::fs::create_dir_all(hsm.path("in")).unwrap();
    (0..n)
        .map(|i| {
            let name = format!("in/artifact-{i}.bin");
            hsm.write(&name, format!("artifact {i}\n").repeat(i + 1));
            name
        })
        .collect()
}

fn openssl_verifies(hsm: &SoftHsm, sig: &str, data: &str) {
    let out = ok(hsm.tool("openssl").args(["dgst", "-sha256", "-verify", "k.pem", "-signature", sig, data]));
    assert_eq!(out.trim(), "Verified OK", "{sig}");
}

#[test]
fn a_manifest_and_repeated_in_sign_every_file_once_and_openssl_agrees() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    ok(hsm.cmd().args(["export-pubkey", "--label", "k", "--out", "k.pem"]));
    let names = files(&hsm, 25);
    hsm.write("manifest.txt", format!("# artifacts\n\n{}\n", names.join("\n")));
    std::fs::create_dir(hsm.path("sigs")).unwrap();
    let out = ok(hsm.cmd().args(["sign", "--label", "k", "--manifest", "manifest.txt", "--out-dir", "sigs", "--jobs", "2"]));
    assert!(out.contains("Signed 25 file(s)"), "{out}");
    for n in &names {
        let file = n.trim_start_matches("in/");
        openssl_verifies(&hsm, &format!("sigs/{file}.sig"), n);
    }
    // --in repeated, one thread, raw r||s.
    std::fs::create_dir(hsm.path("raw")).unwrap();
    ok(hsm.cmd().args(["sign", "--label", "k", "--in", &names[0], "--in", &names[1], "--out-dir", "raw", "--jobs", "1", "--format", "raw"]));
    assert_eq!(std::fs::read(hsm.path("raw/artifact-0.bin.sig")).unwrap().len(), 64);
    // hsm-demo verify takes each back.
    let sig_hex = hex::encode(std::fs::read(hsm.path("sigs/artifact-7.bin.sig")).unwrap());
    ok(hsm.cmd().args(["verify", "--label", "k", "--in", &names[7], "--sig", &sig_hex]));
}

#[test]
fn a_batch_that_cannot_complete_writes_nothing() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let names = files(&hsm, 4);
    std::fs::create_dir(hsm.path("sigs")).unwrap();
    // An existing output: refused before anything is signed.
    hsm.write("sigs/artifact-2.bin.sig", "keep me");
    let mut args = vec!["sign", "--label", "k", "--out-dir", "sigs"];
    for n in &names {
        args.extend(["--in", n.as_str()]);
    }
    let line = fails_with(hsm.cmd().args(&args), 2);
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(std::fs::read_to_string(hsm.path("sigs/artifact-2.bin.sig")).unwrap(), "keep me");
    assert_eq!(std::fs::read_dir(hsm.path("sigs")).unwrap().count(), 1, "nothing else written");
    std::fs::remove_file(hsm.path("sigs/artifact-2.bin.sig")).unwrap();
    // A missing input, two inputs with one output name, no --out-dir, --data in a batch.
    let line = fails_with(hsm.cmd().args(["sign", "--label", "k", "--out-dir", "sigs", "--in", &names[0], "--in", "in/nope"]), 2);
    assert!(line.contains("cannot read --in in/nope"), "{line}");
    std::fs::create_dir(hsm.path("other")).unwrap();
    hsm.write("other/artifact-0.bin", "same name");
    let line = fails_with(hsm.cmd().args(["sign", "--label", "k", "--out-dir", "sigs", "--in", &names[0], "--in", "other/artifact-0.bin"]), 2);
    assert!(line.contains("would both write"), "{line}");
    let line = fails_with(hsm.cmd().args(["sign", "--label", "k", "--in", &names[0], "--in", &names[1]]), 2);
    assert!(line.contains("need --out-dir"), "{line}");
    assert_eq!(std::fs::read_dir(hsm.path("sigs")).unwrap().count(), 0, "no output from any refused batch");
    // The single-input form is unchanged.
    let out = ok(hsm.cmd().args(["sign", "--label", "k", "--in", &names[0]]));
    assert!(out.starts_with("Signature: "), "{out}");
}
