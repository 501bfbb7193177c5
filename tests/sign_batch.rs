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

/// The `.sig` files in `sigs` and whether anything else (a staging directory) is there.
fn placed(hsm: &SoftHsm) -> (usize, Vec<String>) {
    let mut sigs = 0;
    let mut other = Vec::new();
    for e in std::fs::read_dir(hsm.path("sigs")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sig") {
            sigs += 1;
        } else {
            other.push(name);
        }
    }
    (sigs, other)
}

#[test]
fn a_batch_is_placed_whole_or_not_at_all_whatever_stops_it() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let names = files(&hsm, 300);
    hsm.write("in/manifest", names.iter().map(|n| format!("{}\n", n.trim_start_matches("in/"))).collect::<String>());
    std::fs::create_dir(hsm.path("sigs")).unwrap();
    let bin = env!("CARGO_BIN_EXE_hsm-demo");
    // The report cut short by `head -1`: all placed (exit 0) or none (exit 4), never part.
    let script = format!("{bin} sign --label k --manifest in/manifest --out-dir sigs | head -1 >/dev/null; echo \"exit ${{PIPESTATUS[0]}}\" >&2");
    let out = common::succeeds(
        hsm.tool("bash").env("HSM_DEMO_MODULE", common::softhsm_module()).env("HSM_DEMO_PIN", common::USER_PIN).args(["-c", &script]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let (sigs, other) = placed(&hsm);
    assert!(other.is_empty(), "{other:?}");
    assert!((err.contains("exit 0") && sigs == 300) || (err.contains("exit 4") && sigs == 0), "{sigs} placed: {err}");
    for e in std::fs::read_dir(hsm.path("sigs")).unwrap().flatten() {
        std::fs::remove_file(e.path()).unwrap();
    }
    // A reader that is gone, or an unwritable stdout (/dev/full): exit 4, nothing placed,
    // no staging left.
    for redirect in ["| true", ">/dev/full"] {
        let script = format!("{bin} sign --label k --manifest in/manifest --out-dir sigs {redirect}; echo \"exit ${{PIPESTATUS[0]}}\" >&2");
        let out = common::succeeds(
            hsm.tool("bash").env("HSM_DEMO_MODULE", common::softhsm_module()).env("HSM_DEMO_PIN", common::USER_PIN).args(["-c", &script]),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot write to stdout") && err.contains("exit 4"), "{redirect}: {err}");
        assert_eq!(placed(&hsm), (0, vec![]), "{redirect}");
    }
    // A FIFO among the inputs: refused before the login (it would block), nothing made.
    let fifo = hsm.path("in/pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let line = fails_with(hsm.cmd().args(["sign", "--label", "k", "--out-dir", "sigs", "--in", &names[0], "--in", "in/pipe"]), 2);
    assert!(line.contains("in/pipe is not a regular file"), "{line}");
    assert_eq!(placed(&hsm), (0, vec![]));
    // Killed at random points: the next batch undoes what a killed one placed, so a
    // batch is there whole or not at all.
    let mut state = 5u64;
    let mut undone = 0;
    for round in 0..25 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let micros = (state >> 33) % 400_000;
        let mut child = hsm.spawnable(common::SO_PIN, &["sign", "--label", "k", "--manifest", "in/manifest", "--out-dir", "sigs"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_micros(micros));
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
        let _ = child.wait();
        // The next run: either all 300 are there already (refused: they exist), or it
        // undoes the killed one's partial placement and places all 300 itself.
        let out = hsm.cmd().args(["sign", "--label", "k", "--manifest", "in/manifest", "--out-dir", "sigs"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        undone += usize::from(err.contains("had placed"));
        let (sigs, other) = placed(&hsm);
        assert_eq!(sigs, 300, "round {round}: {sigs} placed after the next run ({err})");
        assert!(other.is_empty(), "round {round}: left behind {other:?}");
        assert!(out.status.success() || err.contains("already exists"), "round {round}: {err}");
        for e in std::fs::read_dir(hsm.path("sigs")).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    eprintln!("25 killed batches: {undone} had placed part of their outputs, undone by the next run");
}
