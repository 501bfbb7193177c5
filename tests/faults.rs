//! Faults, kills, concurrency and hostile I/O against real SoftHSM2 tokens: the
//! ceremony's irreversible step never loses the shares, a reverted PIN is caught,
//! parallel hsm-demo processes stay correct, no panic on a full disk or closed pipe,
//! no core dump, and every refusal happens before anything changes.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{fails_with, ok, recombine, spy_calls, succeeds, SoftHsm, SO_PIN, SPY, USER_PIN};
use predicates::prelude::*;

fn so_pin_opens(hsm: &SoftHsm, pin: &str) -> bool {
    hsm.pkcs11_tool_so_init_pin(pin, USER_PIN).status.success()
}

/// After a fault past C_SetPIN: the directory is where --out said, marked INCOMPLETE,
/// with every share; the shares (recombined here) are the SO PIN in force.
fn assert_shares_kept_and_in_force(hsm: &SoftHsm, dir: &Path) {
    assert!(dir.join("INCOMPLETE").is_file(), "marked incomplete");
    for i in 1..=5 {
        assert!(dir.join(format!("share-{i}-of-5.json")).is_file(), "share {i}");
    }
    assert_shares_in_force(hsm, dir);
}

/// The shares (any three, recombined here) open the SO role, and the old PIN does not.
fn assert_shares_in_force(hsm: &SoftHsm, dir: &Path) {
    let new_pin = recombine(dir, &[1, 3, 5]);
    assert!(!so_pin_opens(hsm, SO_PIN), "the old SO PIN must be gone");
    assert!(so_pin_opens(hsm, &new_pin), "the shares must open the SO role");
}

fn ceremony_with(hsm: &SoftHsm, module: &Path, out: &str) -> common::Command {
    let mut cmd = hsm.cmd();
    cmd.env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["--module", module.to_str().unwrap(), "key-ceremony", "--out", out]);
    cmd
}

/// A ceremony into ./c through the fault module in `mode`, which must fail with exit 4
/// and one line; the token store and that line.
fn faulted_ceremony(mode: &str) -> (SoftHsm, String) {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module(mode);
    let line = fails_with(&mut ceremony_with(&hsm, &module, "c"), 4);
    (hsm, line)
}

#[test]
fn so_step_killed_right_after_set_pin_keeps_the_shares() {
    let (hsm, line) = faulted_ceremony("kill-after-setpin");
    assert!(
        line.contains("the SO PIN may have changed") && line.contains("shares in c are its only copy"),
        "{line}"
    );
    assert_shares_kept_and_in_force(&hsm, &hsm.path("c"));
}

#[test]
fn logout_failing_after_set_pin_keeps_the_shares() {
    let (hsm, line) = faulted_ceremony("logout-fails-after-setpin");
    assert!(line.contains("logging in with the new one failed"), "{line}");
    assert_shares_kept_and_in_force(&hsm, &hsm.path("c"));
}

#[test]
fn the_ceremony_killed_after_set_pin_leaves_visible_shares_and_the_next_run_points_at_them() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("kill-parent-after-setpin");
    let out = ceremony_with(&hsm, &module, "c").assert().get_output().clone();
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_shares_kept_and_in_force(&hsm, &hsm.path("c"));
    // No hidden staging directory anywhere: the only place is --out. (`.local` is
    // HOME's: the lock directory.)
    let hidden: Vec<_> = std::fs::read_dir(hsm.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".local")
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    // The next ceremony names the incomplete one (and stops at the label in use, which
    // it says may be left from a ceremony that did not complete).
    let err = hsm
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["key-ceremony", "--no-quorum", "--out", "d"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("note: ./c holds a ceremony that did not complete"),
        "{err}"
    );
    assert!(err.contains("hsm-demo delete-key --label root-ca-key"), "{err}");
    assert!(!hsm.path("d").exists());
}

#[test]
fn a_pin_change_undone_after_the_step_is_caught_by_the_final_check() {
    let (hsm, line) = faulted_ceremony("revert-after-proof");
    assert!(
        line.contains("the final check failed") && line.contains("OLD SO PIN still opens"),
        "{line}"
    );
    let dir = hsm.path("c");
    assert!(dir.join("INCOMPLETE").is_file());
    assert!(!dir.join("transcript.txt").exists(), "never looks complete");
    assert!(so_pin_opens(&hsm, SO_PIN));
}

#[test]
fn a_completed_ceremony_removes_its_marker_and_proves_the_change() {
    let hsm = SoftHsm::new();
    let out = ok(hsm
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["key-ceremony", "--out", "c"]));
    assert!(out.contains("final check: a fresh process found the old SO PIN refused"), "{out}");
    let dir = hsm.path("c");
    assert!(!dir.join("INCOMPLETE").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    assert_shares_in_force(&hsm, &dir);
}

#[test]
fn a_ceremony_under_a_permissive_umask_keeps_its_directory_and_shares_private() {
    let hsm = SoftHsm::new();
    let script = format!(
        "umask 000; exec {} key-ceremony --out c",
        env!("CARGO_BIN_EXE_hsm-demo")
    );
    succeeds(
        hsm.tool("bash")
            .env("HSM_DEMO_MODULE", common::softhsm_module())
            .env("HSM_DEMO_PIN", USER_PIN)
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["-c", &script]),
    );
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
    };
    assert_eq!(mode(&hsm.path("c")), 0o700);
    assert_eq!(mode(&hsm.path("c/share-1-of-5.json")), 0o600);
}

#[test]
fn eight_processes_signing_fifty_times_each_all_succeed_and_verify() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let pubkey = hsm.write("k.pem", hsm.run_ok(&["export-pubkey", "--label", "k"]));
    let workers: Vec<_> = (0..8)
        .map(|p| {
            let script = format!(
                "for i in $(seq 50); do {} sign --label k --data \"p{p} m$i\" --format der \
                 | sed -n 's/^Signature: //p' > sig.{p}.$i || exit 1; done",
                env!("CARGO_BIN_EXE_hsm-demo")
            );
            let mut cmd = std::process::Command::new("bash");
            cmd.args(["-o", "pipefail", "-c", &script])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap())
                .env("HOME", hsm.dir.path())
                .env("SOFTHSM2_CONF", &hsm.conf)
                .env("HSM_DEMO_MODULE", common::softhsm_module())
                .env("HSM_DEMO_PIN", USER_PIN)
                .current_dir(hsm.dir.path())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for p in 0..8 {
        for i in 1..=50 {
            let hex = std::fs::read_to_string(hsm.path(&format!("sig.{p}.{i}"))).unwrap();
            let der = hex::decode(hex.trim()).unwrap();
            let sig = hsm.write("one.sig", der);
            let data = hsm.write("one.txt", format!("p{p} m{i}"));
            hsm.openssl_verifies(&pubkey, &sig, &data);
        }
    }
}

#[test]
fn parallel_generate_key_with_one_label_leaves_exactly_one_pair() {
    let hsm = SoftHsm::new();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hsm-demo"));
            cmd.args(["generate-key", "--label", "same"])
                .env_clear()
                .env("HOME", hsm.dir.path())
                .env("SOFTHSM2_CONF", &hsm.conf)
                .env("HSM_DEMO_MODULE", common::softhsm_module())
                .env("HSM_DEMO_PIN", USER_PIN)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let codes: Vec<Option<i32>> = workers
        .into_iter()
        .map(|w| w.wait_with_output().unwrap().status.code())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == Some(0)).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == Some(2)).count(), 3, "{codes:?}");
    let keys = hsm.keys_json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "one pair: {keys}");
}

#[test]
fn a_full_disk_or_a_closed_stdout_is_one_line_and_a_failure_never_a_panic() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let bin = env!("CARGO_BIN_EXE_hsm-demo");
    for (redirect, args, reason) in [
        (">/dev/full", "list-keys", "No space left on device"),
        (">/dev/full", "list-slots --json", "No space left on device"),
        (">/dev/full", "export-pubkey --label k", "No space left on device"),
        (">/dev/full", "sign --label k --data x", "No space left on device"),
        ("| true", "list-slots", "Broken pipe"),
    ] {
        // `true` exits at once, so list-slots writes into a closed pipe.
        let script = format!("sleep 0.01; {bin} {args} {redirect}; echo \"exit $?\" >&2");
        let out = succeeds(
            hsm.tool("bash")
                .env("HSM_DEMO_MODULE", common::softhsm_module())
                .env("HSM_DEMO_PIN", USER_PIN)
                .args(["-c", &script]),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        if redirect == "| true" {
            // The pipe's reader may still be there for a small write; what must never
            // happen is a panic (exit 101).
            assert!(!err.contains("panicked") && !err.contains("exit 101"), "{err}");
            continue;
        }
        assert_eq!(
            err,
            format!("hsm-demo: cannot write to stdout: {reason}\nexit 4\n"),
            "{args} {redirect}"
        );
    }
}

#[test]
fn a_stdout_that_is_dev_null_read_write_is_a_working_stdout() {
    // Python's subprocess.DEVNULL and a shell's 1<>/dev/null open /dev/null read-write,
    // as the Rust runtime reopens a closed stdout: the command does its work and succeeds.
    let hsm = SoftHsm::new();
    hsm.generate("k");
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["csr", "--label", "k", "--subject", "/CN=www.example.com", "--san", "DNS:www.example.com", "--out", "www.csr"]));
    let bin = env!("CARGO_BIN_EXE_hsm-demo");
    let python = format!(
        "import subprocess, sys\nsys.exit(subprocess.run(['{bin}', 'issue', '--ca', 'root', '--csr', 'www.csr', '--profile', 'tls-server'], stdout=subprocess.DEVNULL).returncode)"
    );
    succeeds(hsm.tool("python3").env("HSM_DEMO_MODULE", common::softhsm_module()).env("HSM_DEMO_PIN", USER_PIN).args(["-c", &python]));
    for redirect in ["1<>/dev/null", ">&-"] {
        let script = format!("{bin} sign --label k --data x {redirect}");
        succeeds(hsm.tool("bash").env("HSM_DEMO_MODULE", common::softhsm_module()).env("HSM_DEMO_PIN", USER_PIN).args(["-c", &script]));
        let script = format!("{bin} crl --ca root --out r-{}.crl {redirect}", redirect.len());
        succeeds(hsm.tool("bash").env("HSM_DEMO_MODULE", common::softhsm_module()).env("HSM_DEMO_PIN", USER_PIN).args(["-c", &script]));
    }
    let listing = ok(hsm.cmd().args(["list-issued", "--ca", "root"]));
    assert!(listing.contains("1 record(s)"), "the certificate issued under DEVNULL is recorded: {listing}");
}

#[test]
fn a_ceremony_piped_into_head_still_completes_and_reports_the_lost_output() {
    let hsm = SoftHsm::new();
    let script = format!(
        "{} key-ceremony --out c | head -n 2; echo \"exit ${{PIPESTATUS[0]}}\" >&2",
        env!("CARGO_BIN_EXE_hsm-demo")
    );
    let out = succeeds(
        hsm.tool("bash")
            .env("HSM_DEMO_MODULE", common::softhsm_module())
            .env("HSM_DEMO_PIN", USER_PIN)
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["-c", &script]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the ceremony completed, but its report was not fully written")
            && err.contains("Broken pipe")
            && err.contains("exit 4"),
        "{err}"
    );
    let dir = hsm.path("c");
    assert!(!dir.join("INCOMPLETE").exists() && dir.join("transcript.sig").exists());
    assert_shares_in_force(&hsm, &dir);
}

#[test]
fn a_process_holding_a_pin_leaves_no_core_dump() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    // `sign --in -` logs in (the PIN is in memory) and then waits on stdin; SIGABRT
    // would dump core where the pattern is `core` (the control, `sleep`, shows it does).
    // The FIFO keeps hsm-demo waiting for data after its login.
    let script = format!(
        "ulimit -c unlimited; mkdir ctl run; mkfifo in; \
         (cd ctl && exec sleep 30) & ctl=$!; \
         (cd run && exec {} sign --label k --in ../in) & run=$!; \
         exec 3>in; sleep 1; kill -ABRT $ctl $run; \
         wait $ctl; wait $run; ls ctl run",
        env!("CARGO_BIN_EXE_hsm-demo")
    );
    let listing = ok(hsm
        .tool("bash")
        .env("HSM_DEMO_MODULE", common::softhsm_module())
        .env("HSM_DEMO_PIN", USER_PIN)
        .args(["-c", &script]));
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert_eq!(core_pattern.trim(), "core", "this test reads cores from the cwd");
    let (ctl, run) = listing.split_once("run:").unwrap();
    assert!(ctl.contains("core"), "control: sleep must dump core: {listing}");
    assert!(!run.contains("core"), "hsm-demo dumped core: {listing}");
}

#[test]
fn refusals_happen_before_anything_changes() {
    // A token label the blank padding would change: no token is initialized.
    let empty = SoftHsm::empty();
    let mut init = empty.bare_cmd();
    init.env("SOFTHSM2_CONF", &empty.conf)
        .env("HSM_DEMO_MODULE", common::softhsm_module())
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .env("HSM_DEMO_PIN", USER_PIN);
    let line = fails_with(init.args(["init-token", "--label", "trail "]), 2);
    assert!(line.contains("blanks"), "{line}");
    // A user PIN shorter than the token's minimum: refused before C_InitToken.
    let line = fails_with(
        empty
            .cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .env("HSM_DEMO_PIN", "12")
            .args(["init-token", "--label", "short"]),
        2,
    );
    assert!(line.contains("user PIN") && line.contains("2 characters"), "{line}");
    let slots = empty.run_ok(&["list-slots", "--json"]);
    assert!(!slots.contains("\"initialized\": true"), "{slots}");

    // A 1 MB PIN file never reaches C_Login.
    let hsm = SoftHsm::new();
    let big = hsm.write("big.pin", vec![b'1'; 1 << 20]);
    let log = hsm.path("spy.log");
    let line = fails_with(
        hsm.cmd()
            .env("PKCS11SPY", common::softhsm_module())
            .env("PKCS11SPY_OUTPUT", &log)
            .args(["--module", SPY, "--pin-file", big.to_str().unwrap(), "list-keys"]),
        2,
    );
    assert!(line.contains("larger than"), "{line}");
    assert_eq!(spy_calls(&log, "C_Login"), 0);
    // A PIN longer than ulMaxPinLen never reaches C_Login either.
    let line = fails_with(
        hsm.cmd()
            .env("PKCS11SPY", common::softhsm_module())
            .env("PKCS11SPY_OUTPUT", &log)
            .env("HSM_DEMO_PIN", "9".repeat(300))
            .args(["--module", SPY, "list-keys"]),
        2,
    );
    assert!(line.contains("300 characters") && line.contains("4 to 255"), "{line}");
    assert_eq!(spy_calls(&log, "C_Login"), 0);

    // An --out that cannot be created stops the ceremony before Step 1.
    let line = fails_with(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["key-ceremony", "--out", "/proc/hsm-demo-ceremony"]),
        2,
    );
    assert_eq!(
        line,
        "hsm-demo: cannot write --out /proc/hsm-demo-ceremony: No such file or directory\n"
    );
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 0);
    assert!(so_pin_opens(&hsm, SO_PIN));
}

#[test]
fn delete_key_needs_the_label_typed_again_and_spares_a_live_root() {
    let hsm = SoftHsm::new();
    hsm.generate("scratch");
    let line = fails_with(hsm.cmd().args(["delete-key", "--label", "scratch"]), 2);
    assert!(line.contains("--confirm"), "{line}");
    let line = fails_with(
        hsm.cmd()
            .args(["delete-key", "--label", "scratch", "--confirm", "scratc"]),
        2,
    );
    assert!(line.contains("nothing was deleted"), "{line}");
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 2);
    hsm.cmd()
        .args(["delete-key", "--label", "scratch", "--confirm", "scratch"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("Deleted key pair 'scratch'"));
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 0);

    // The root key of a completed ceremony (found in the current directory).
    succeeds(
        hsm.cmd()
            .env("HSM_DEMO_SO_PIN", SO_PIN)
            .args(["key-ceremony", "--no-quorum", "--out", "root"]),
    );
    let delete = ["delete-key", "--label", "root-ca-key", "--confirm", "root-ca-key"];
    let line = fails_with(hsm.cmd().args(delete), 2);
    assert!(line.contains("root key of the completed ceremony in ./root"), "{line}");
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 2);
    succeeds(hsm.cmd().args(delete).arg("--force"));
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 0);
}

#[test]
fn the_so_step_gets_no_pin_variable_and_nothing_the_module_does_not_need() {
    let hsm = SoftHsm::new();
    let module = hsm.fault_module("record-env");
    succeeds(
        ceremony_with(&hsm, &module, "c")
            .env("HSM_DEMO_NEW_PIN", "99999999")
            .env("UNRELATED_SECRET", "canary"),
    );
    let env = std::fs::read_to_string(hsm.path("fault_pkcs11.so.env")).unwrap();
    assert!(
        env.lines()
            .any(|l| l == format!("SOFTHSM2_CONF={}", hsm.conf.display())),
        "{env}"
    );
    for absent in ["HSM_DEMO_", "UNRELATED_SECRET", "PATH=", "HOME="] {
        assert!(!env.contains(absent), "{absent} reached the SO step:\n{env}");
    }
}

#[test]
fn sign_streams_stdin_signs_empty_input_and_needs_no_temporary_file() {
    let hsm = SoftHsm::new();
    hsm.generate("k");
    let pubkey = hsm.write("k.pem", hsm.run_ok(&["export-pubkey", "--label", "k"]));
    for (name, data) in [("empty", Vec::new()), ("some", b"streamed data".to_vec())] {
        let input = hsm.write(name, &data);
        let out = ok(hsm
            .cmd()
            .env("TMPDIR", "/nonexistent")
            .args(["sign", "--label", "k", "--in", "-"])
            .pipe_stdin(&input)
            .unwrap());
        let sig = hsm.write("s.der", hex::decode(common::signature_hex(&out)).unwrap());
        hsm.openssl_verifies(&pubkey, &sig, &input);
    }
    // --data "" too, checked by hsm-demo itself.
    let sig = common::signature_hex(&hsm.run_ok(&["sign", "--label", "k", "--data", ""]));
    hsm.cmd()
        .args(["verify", "--label", "k", "--in", "/dev/null", "--sig", &sig])
        .assert()
        .success();
}

#[test]
fn messages_name_what_is_wrong() {
    let hsm = SoftHsm::new();
    // SOFTHSM2_CONF pointing nowhere, or at a config whose token directory is missing.
    let line = fails_with(hsm.cmd().env("SOFTHSM2_CONF", "/nonexistent.conf").arg("list-keys"), 3);
    assert!(line.contains("/nonexistent.conf (SOFTHSM2_CONF) cannot be read"), "{line}");
    let conf = hsm.write("gone.conf", "directories.tokendir = /nonexistent/tokens\n");
    let line = fails_with(hsm.cmd().env("SOFTHSM2_CONF", &conf).arg("list-keys"), 3);
    assert!(line.contains("the token directory /nonexistent/tokens"), "{line}");
    // A library name without a slash, present in the current directory.
    std::fs::copy(common::softhsm_module(), hsm.path("libcopy.so")).unwrap();
    let line = fails_with(hsm.cmd().args(["--module", "libcopy.so", "list-slots"]), 3);
    assert!(line.contains("use ./libcopy.so"), "{line}");
    // A client module whose server is not running.
    let line = fails_with(
        hsm.cmd()
            .env("P11_KIT_SERVER_ADDRESS", format!("unix:path={}", hsm.path("none.sock").display()))
            .args(["--module", "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so", "list-keys"]),
        3,
    );
    assert!(line.contains("reports no slots at all"), "{line}");
    // No HOME and no XDG_DATA_HOME for the embedded store: a setup error, not a crash.
    let line = fails_with(hsm.bare_cmd().env_remove("HOME").arg("list-keys"), 3);
    assert!(line.contains("neither XDG_DATA_HOME nor HOME is set"), "{line}");
    // A share file that is not there is named.
    let line = fails_with(
        hsm.cmd()
            .args(["quorum-reset-pin", "--share", "nonexistent.json"]),
        2,
    );
    assert!(line.contains("nonexistent.json"), "{line}");
}

#[test]
fn two_ceremonies_at_once_on_one_token_give_one_working_quorum() {
    let hsm = SoftHsm::new();
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hsm-demo"));
            cmd.args(["key-ceremony", "--label", &format!("root-{name}"), "--out", name])
                .env_clear()
                .env("HOME", hsm.dir.path())
                .env("SOFTHSM2_CONF", &hsm.conf)
                .env("HSM_DEMO_MODULE", common::softhsm_module())
                .env("HSM_DEMO_PIN", USER_PIN)
                .env("HSM_DEMO_SO_PIN", SO_PIN)
                .current_dir(hsm.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            (*name, cmd.spawn().unwrap())
        })
        .collect();
    let mut done = Vec::new();
    for (name, run) in runs {
        let out = run.wait_with_output().unwrap();
        done.push((name, out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let winners: Vec<_> = done.iter().filter(|(_, code, _)| *code == Some(0)).collect();
    assert_eq!(winners.len(), 1, "{done:?}");
    // The other one waited for the lock, then found the SO PIN already changed, before
    // its Step 1: no directory, no key.
    let (loser, code, err) = done.iter().find(|(_, code, _)| *code != Some(0)).unwrap();
    assert_eq!(*code, Some(3), "{err}");
    assert!(err.contains("SO PIN incorrect"), "{err}");
    assert!(!hsm.path(loser).exists());
    assert_eq!(hsm.keys_json()["keys"].as_array().unwrap().len(), 2);
    assert_shares_in_force(&hsm, &hsm.path(winners[0].0));
}

/// Waits for `child` up to `secs` seconds; whether it ended, and its exit code.
fn wait_up_to(child: &mut std::process::Child, secs: u64) -> Option<Option<i32>> {
    let start = std::time::Instant::now();
    while start.elapsed().as_secs() < secs {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

#[test]
fn issue_and_ca_init_on_one_directory_beside_a_signer_take_the_locks_in_one_order() {
    // issue takes the CA directory's lock, then the store's; ca-init used to take them the
    // other way round, and with a signer holding the store lock the two waited forever.
    let hsm = SoftHsm::new();
    hsm.generate("k");
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["csr", "--label", "k", "--subject", "/CN=www.example.com", "--san", "DNS:www.example.com", "--out", "www.csr"]));
    ok(hsm.cmd().args(["list-issued", "--ca", "root"]));
    let mut signer = hsm.spawnable(SO_PIN, &["bench", "--label", "k", "--count", "6000"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    let mut issue = hsm.spawnable(SO_PIN, &["issue", "--ca", "root", "--csr", "www.csr", "--profile", "tls-server", "--out", "www.pem"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut init = hsm.spawnable(SO_PIN, &["ca-init", "--ca", "root", "--cert", "root/root-ca.pem", "--label", "root-key"]).spawn().unwrap();
    let issued = wait_up_to(&mut issue, 120);
    let inited = wait_up_to(&mut init, 120);
    let _ = signer.kill();
    let _ = signer.wait();
    for c in [&mut issue, &mut init] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(issued, Some(Some(0)), "issue did not finish");
    // ca-init finished too: refused, the directory holds a CA already.
    assert_eq!(inited, Some(Some(2)), "ca-init did not finish");
    assert!(hsm.path("www.pem").is_file());
}

#[test]
fn a_ca_directory_whose_records_lack_the_ca_is_set_up_again() {
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--out", "root", "--label", "root-key"]));
    // A zero-byte ca.db (what a kill inside the old non-atomic adoption left): the
    // ceremony directory is adopted again, whole.
    hsm.write("root/ca.db", b"");
    let listing = ok(hsm.cmd().args(["list-issued", "--ca", "root"]));
    assert!(listing.contains("0 record(s)"), "{listing}");
    // A ca-init directory with an empty ca.db: ca-init sets it up again.
    std::fs::create_dir(hsm.path("other")).unwrap();
    hsm.write("other/ca.db", b"");
    let line = fails_with(hsm.cmd().args(["list-issued", "--ca", "other"]), 2);
    assert!(line.contains("holds no CA records") && line.contains("ca-init --ca other"), "{line}");
    ok(hsm.cmd().args(["ca-init", "--ca", "other", "--cert", "root/root-ca.pem", "--label", "root-key"]));
    ok(hsm.cmd().args(["list-issued", "--ca", "other"]));
}
