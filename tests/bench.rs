//! `bench --json` yields every figure, all positive, with ratios that agree with the
//! raw figures of the same output. (Speed goals live in scripts/bench.sh, not here.)

mod common;

use common::{succeeds, SoftHsm};

fn positive(v: &serde_json::Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} missing or not a number: {v}"));
    assert!(x > 0.0 && x.is_finite(), "{what} = {x}");
    x
}

#[test]
fn bench_json_has_every_field_positive_and_consistent_ratios() {
    let hsm = SoftHsm::new();
    hsm.generate("bench-key");
    let out = succeeds(hsm.cmd().args([
        "bench",
        "--label",
        "bench-key",
        "--count",
        "50",
        "--threads",
        "2",
        "--json",
    ]));
    assert!(
        out.stderr.is_empty(),
        "no progress bar under --json: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["count"], 50);
    assert_eq!(v["threads"], 2);
    let phases = v["cold_start"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "module load + C_Initialize",
            "open session + C_Login",
            "key lookup (C_FindObjects, public key)",
            "provider load + OSSL_STORE key load",
            "first signature (EVP, provider)"
        ]
    );
    let sum: f64 = phases
        .iter()
        .map(|p| positive(&p["ms"], p["name"].as_str().unwrap()))
        .sum();
    assert!((positive(&v["cold_start_total_ms"], "total") - sum).abs() < 1e-9);

    let mut rate = std::collections::HashMap::new();
    for (list, threads) in [("one_thread", 1), ("multi_thread", 2)] {
        let results = v[list].as_array().unwrap();
        let paths: Vec<&str> = results
            .iter()
            .map(|r| r["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            ["evp_provider", "cryptoki_c_sign", "software_key"],
            "{list}"
        );
        for r in results {
            let what = format!("{list} {}", r["path"]);
            assert_eq!(r["threads"], threads, "{what}");
            assert_eq!(r["signatures"], 50, "{what}");
            let (p50, p90, p99, max) = (
                positive(&r["p50_us"], &what),
                positive(&r["p90_us"], &what),
                positive(&r["p99_us"], &what),
                positive(&r["max_us"], &what),
            );
            assert!(
                p50 <= p90 && p90 <= p99 && p99 <= max,
                "{what}: percentiles out of order"
            );
            let per_second = positive(&r["per_second"], &what);
            let wall = positive(&r["wall_s"], &what);
            assert!(
                (per_second - 50.0 / wall).abs() / per_second < 1e-9,
                "{what}: throughput is count / wall time"
            );
            // First, last and 1 in 100, per thread.
            assert!(r["verified"].as_u64().unwrap() >= 2, "{what}");
            rate.insert((list, r["path"].as_str().unwrap().to_string()), per_second);
        }
    }
    let close = |a: f64, b: f64| (a - b).abs() / b < 1e-9;
    let r = &v["ratios"];
    assert!(close(
        positive(&r["evp_over_cryptoki"], "ratio"),
        rate[&("one_thread", "evp_provider".into())]
            / rate[&("one_thread", "cryptoki_c_sign".into())]
    ));
    assert!(close(
        positive(&r["evp_over_software"], "ratio"),
        rate[&("one_thread", "evp_provider".into())] / rate[&("one_thread", "software_key".into())]
    ));
    for pair in r["scaling"].as_array().unwrap() {
        let path = pair[0].as_str().unwrap().to_string();
        assert!(close(
            positive(&pair[1], "scaling"),
            rate[&("multi_thread", path.clone())] / rate[&("one_thread", path)]
        ));
    }
    assert_eq!(r["scaling"].as_array().unwrap().len(), 3);
}

#[test]
fn bench_text_names_the_paths_and_ratios() {
    let hsm = SoftHsm::new();
    hsm.generate("bench-key");
    let out = hsm.run_ok(&["bench", "--label", "bench-key", "--count", "20"]);
    for want in [
        "Cold start",
        "(a) OpenSSL EVP + pkcs11-provider",
        "(b) cryptoki C_Sign(CKM_ECDSA)",
        "(c) software key",
        "(a)/(b) throughput, 1 thread:",
        "(a)/(c) throughput, 1 thread:",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
    hsm.cmd()
        .args(["bench", "--label", "nope", "--count", "5"])
        .assert()
        .code(2);
    hsm.cmd()
        .args(["bench", "--label", "bench-key", "--count", "0"])
        .assert()
        .code(2);
}

#[test]
fn bench_takes_any_signing_key_and_names_the_mechanism_of_its_raw_path() {
    let hsm = SoftHsm::new();
    for (algo, raw_path, algorithm) in [
        ("rsa-2048", "(b) cryptoki C_Sign(CKM_RSA_PKCS)", "RSA 2048 bits"),
        ("ed25519", "(b) cryptoki C_Sign(CKM_EDDSA)", "EdDSA Ed25519"),
        ("ec-p384", "(b) cryptoki C_Sign(CKM_ECDSA)", "EC P-384"),
    ] {
        let label = format!("b-{algo}");
        hsm.run_ok(&["generate-key", "--label", &label, "--algo", algo]);
        let out = hsm.run_ok(&["bench", "--label", &label, "--count", "30"]);
        assert!(out.contains(raw_path), "{algo}: {out}");
        assert!(out.contains(&format!("key '{label}' ({algorithm})")), "{algo}: {out}");
        // Every path's sampled signatures verified: 30 signatures -> first, last, 0 mod 100.
        let v: serde_json::Value = serde_json::from_str(&hsm.run_ok(&[
            "bench", "--label", &label, "--count", "30", "--json",
        ]))
        .unwrap();
        for r in v["one_thread"].as_array().unwrap() {
            assert_eq!(r["verified"], 2, "{algo}: {r}");
        }
    }
}

#[test]
fn implicit_fetch_and_several_processes_report_every_path() {
    let hsm = SoftHsm::new();
    hsm.generate("bench-key");
    let out = succeeds(hsm.cmd().args(["bench", "--label", "bench-key", "--count", "40", "--implicit-fetch", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["one_thread"].as_array().unwrap().len(), 3);
    for p in v["one_thread"].as_array().unwrap() {
        assert!(p["verified"].as_u64().unwrap() >= 2, "sampled signatures verified: {p}");
    }
    // Two worker processes: each logs in (one at a time, the parent holding the store's
    // lock), signs, and reports; the summed rates cover the three paths.
    let out = succeeds(hsm.cmd().args(["bench", "--label", "bench-key", "--count", "40", "--processes", "2", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["processes"], 2);
    let rates = v["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 3, "{v}");
    for r in rates {
        let one = positive(&r["one_process"], "one_process");
        let all = positive(&r["processes"], "processes");
        let ratio = positive(&r["ratio"], "ratio");
        assert!((all / one - ratio).abs() < 1e-6, "{r}");
    }
    assert!(v["key"].as_str().unwrap().starts_with("pkcs11:"), "{v}");
    // The PIN never appears in what the workers were started with.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(common::USER_PIN), "{text}");
    // --processes and --threads do not mix.
    common::fails_with(hsm.cmd().args(["bench", "--label", "bench-key", "--processes", "2", "--threads", "2"]), 2);
}

#[test]
fn bench_workers_die_with_their_parent() {
    let hsm = common::SoftHsm::new();
    hsm.generate("k");
    let mut parent = hsm.spawnable(common::SO_PIN, &["bench", "--label", "k", "--count", "2000000", "--processes", "2"]).spawn().unwrap();
    let group = parent.id().to_string();
    // Live processes whose process group is the parent's (/proc/PID/stat: the fields
    // after the command name are state, ppid, pgrp).
    let members = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
                fields.get(2) == Some(&group.as_str()) && fields.first() != Some(&"Z")
            })
            .count()
    };
    // A worker runs (the one-process phase first): the parent and it in the group.
    let start = std::time::Instant::now();
    while members() < 2 && start.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(members() >= 2, "no worker started");
    // kill -9 of the parent alone: its workers follow (PR_SET_PDEATHSIG), none signs on.
    parent.kill().unwrap();
    parent.wait().unwrap();
    let start = std::time::Instant::now();
    while members() > 0 && start.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(members(), 0, "workers outlived their parent");
}
