//! The CA directory's operations log (issue 26): every operation appends its entries
//! and one signed checkpoint; `verify-audit` checks it offline and names the first
//! entry that does not hold, for an edited, deleted or reordered line, any edited byte,
//! and any ca.db certificate row changed behind its back; a directory made before the
//! log is adopted; a kill inside the token's C_Sign and two concurrent issuers leave a
//! chain that verifies.

mod common;

use std::os::unix::process::ExitStatusExt as _;

use common::{fails_with, ok, SoftHsm, SO_PIN};

/// The log's lines, parsed.
fn entries(hsm: &SoftHsm, dir: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(hsm.path(&format!("{dir}/audit.log")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The types of the entries after the first `from`.
fn types_after(hsm: &SoftHsm, dir: &str, from: usize) -> Vec<String> {
    entries(hsm, dir)[from..].iter().map(|e| e["type"].as_str().unwrap().to_string()).collect()
}

fn root(hsm: &SoftHsm) {
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--algo", "ec-p384", "--out", "root", "--label", "root-key"]));
    ok(hsm.cmd().args(["generate-key", "--label", "leaf"]));
    ok(hsm.cmd().args(["csr", "--label", "leaf", "--subject", "/CN=a.example", "--san", "DNS:a.example", "--out", "a.csr"]));
}

fn verify_ok(hsm: &SoftHsm, dir: &str) -> String {
    let out = ok(hsm.cmd().args(["verify-audit", dir]));
    assert!(out.contains("Head (for the witness sheet): entry "), "{out}");
    out
}

#[test]
fn every_operation_appends_its_entries_and_one_checkpoint_that_openssl_verifies() {
    let hsm = SoftHsm::new();
    root(&hsm);
    // The first command on a ceremony directory starts the log, chained to the transcript.
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", "a.pem", "--note", "CHG-1 witnesses A, B"]));
    let e = entries(&hsm, "root");
    let transcript = std::fs::read(hsm.path("root/transcript.txt")).unwrap();
    assert_eq!(e[0]["type"], "start");
    assert_eq!(e[0]["prev"].as_str().unwrap(), hex_sha256(&transcript));
    assert_eq!(types_after(&hsm, "root", 1), ["begin", "commit", "begin", "issue", "commit", "checkpoint"]);
    assert_eq!(e[3]["command"], "issue");
    assert_eq!(e[3]["note"], "CHG-1 witnesses A, B");
    assert_eq!(e[3]["token"]["label"], "test-hsm");
    assert!(e[3]["key"].as_str().unwrap().contains("object=root-key"));
    ok(hsm.tool("openssl").args(["req", "-in", "a.csr", "-outform", "DER", "-out", "a.csr.der"]));
    assert_eq!(e[3]["inputs"]["csr_sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("a.csr.der")).unwrap()));
    let serial = e[4]["serial"].as_str().unwrap().to_string();
    let pem = std::fs::read(hsm.path("a.pem")).unwrap();
    assert_eq!(e[5]["outputs"]["out_sha256"].as_str().unwrap(), hex_sha256(&pem));
    let der = ok(hsm.tool("openssl").args(["x509", "-in", "a.pem", "-outform", "DER", "-out", "a.der"]));
    assert!(der.is_empty());
    assert_eq!(e[5]["outputs"]["cert_sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("a.der")).unwrap()));
    // revoke: one entry per serial, one checkpoint.
    let n = entries(&hsm, "root").len();
    ok(hsm.cmd().args(["revoke", "--ca", "root", "--serial", &serial, "--reason", "keyCompromise"]));
    assert_eq!(types_after(&hsm, "root", n), ["begin", "revoke", "commit", "checkpoint"]);
    let e = entries(&hsm, "root");
    assert_eq!(e[n]["inputs"]["reason"], "keyCompromise");
    assert_eq!(e[n + 1]["serial"].as_str().unwrap(), serial);
    // crl: the number before signing, the CRL's digest after.
    let n = e.len();
    ok(hsm.cmd().args(["crl", "--ca", "root", "--out", "root.crl", "--der"]));
    assert_eq!(types_after(&hsm, "root", n), ["begin", "crl", "commit", "checkpoint"]);
    let e = entries(&hsm, "root");
    assert_eq!(e[n + 1]["number"], 1);
    assert_eq!(e[n + 2]["outputs"]["crl_sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("root.crl")).unwrap()));
    // A refused request writes no entry.
    let before = std::fs::read(hsm.path("root/audit.log")).unwrap();
    fails_with(hsm.cmd().args(["issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--days", "0"]), 2);
    assert_eq!(std::fs::read(hsm.path("root/audit.log")).unwrap(), before);
    // ca-init: the imported records, each an entry; no token key used, so no checkpoint.
    hsm.write("index.txt", "V\t351231235959Z\t\t1000\tunknown\t/CN=kept\nR\t351231235959Z\t250102030405Z,superseded\t1001\tunknown\t/CN=replaced\n");
    ok(hsm.cmd().args(["ca-init", "--ca", "legacy", "--cert", "root/root-ca.pem", "--label", "root-key", "--import-index", "index.txt", "--note", "migrated"]));
    let l = entries(&hsm, "legacy");
    assert_eq!(l[0]["prev"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("legacy/ca.db")).map(|_| cert_der(&hsm)).unwrap()), "chained to the CA certificate");
    assert_eq!(types_after(&hsm, "legacy", 1), ["begin", "record", "record", "commit"]);
    assert_eq!(l[1]["command"], "ca-init");
    assert_eq!(l[1]["note"], "migrated");
    assert_eq!(l[1]["inputs"]["index_sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("index.txt")).unwrap()));
    assert_eq!(l[3]["reason"], "superseded");
    let out = verify_ok(&hsm, "legacy");
    assert!(out.contains("no checkpoint signature yet"), "{out}");
    // verify-audit: chain, 3 checkpoints, records; the head is the last line's SHA-256.
    let out = verify_ok(&hsm, "root");
    assert!(out.contains("3 checkpoint signature(s) verify"), "{out}");
    assert!(out.contains("its 1 certificate record(s) and 1 CRL record(s)"), "{out}");
    let log = std::fs::read_to_string(hsm.path("root/audit.log")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(out.contains(&format!("entry {} sha256 {}", log.lines().count(), hex_sha256(last.as_bytes()))), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(hsm.cmd().args(["verify-audit", "root", "--json"]))).unwrap();
    assert_eq!(json["head_sha256"].as_str().unwrap(), hex_sha256(last.as_bytes()));
    // The README's openssl check of the last checkpoint, with the CLI alone.
    let check = "tail -n 1 root/audit.log | jq -j '\"\\(.seq - 1) \\(.prev)\\n\"' > head.txt && \
                 tail -n 1 root/audit.log | jq -r .signature | openssl base64 -d -A > head.sig && \
                 openssl dgst -sha384 -verify root/root-ca.pub.pem -signature head.sig head.txt";
    assert!(ok(hsm.tool("sh").args(["-c", check])).contains("Verified OK"));
    std::fs::write(hsm.path("head.txt"), "14 0000\n").unwrap();
    assert!(!hsm.tool("openssl").args(["dgst", "-sha384", "-verify", "root/root-ca.pub.pem", "-signature", "head.sig", "head.txt"]).output().unwrap().status.success());
}

fn hex_sha256(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write as _;
    out.stdin.as_ref().unwrap().write_all(bytes).unwrap();
    let o = out.wait_with_output().unwrap();
    String::from_utf8(o.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn cert_der(hsm: &SoftHsm) -> Vec<u8> {
    let out = hsm.tool("openssl").args(["x509", "-in", "root/root-ca.pem", "-outform", "DER"]).output().unwrap();
    out.stdout
}

/// A CA directory with an issued, a revoked and an abandoned serial, and a CRL.
fn busy_root(hsm: &SoftHsm) -> (String, String) {
    root(hsm);
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", "a.pem"]));
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", "b.pem"]));
    let serial = |f: &str| ok(hsm.tool("openssl").args(["x509", "-in", f, "-noout", "-serial"])).trim().trim_start_matches("serial=").to_string();
    let (a, b) = (serial("a.pem"), serial("b.pem"));
    ok(hsm.cmd().args(["revoke", "--ca", "root", "--serial", &a]));
    ok(hsm.cmd().args(["crl", "--ca", "root", "--out", "root.crl"]));
    (a, b)
}

/// verify-audit on a copy of root changed by `change`: exit 1, and its line.
fn tampered(hsm: &SoftHsm, change: impl FnOnce(&std::path::Path)) -> String {
    changed_copy(hsm, change);
    fails_with(hsm.cmd().args(["verify-audit", "copy"]), 1)
}

/// A fresh copy of root, as `copy`, changed by `change`.
fn changed_copy(hsm: &SoftHsm, change: impl FnOnce(&std::path::Path)) {
    let copy = hsm.path("copy");
    let _ = std::fs::remove_dir_all(&copy);
    ok(hsm.tool("cp").args(["-a", "root", "copy"]));
    change(&copy);
}

fn edit_line(dir: &std::path::Path, edit: impl FnOnce(&mut Vec<String>)) {
    let path = dir.join("audit.log");
    let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
    edit(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn sql(dir: &std::path::Path, statement: &str) {
    let out = std::process::Command::new("sqlite3").arg(dir.join("ca.db")).arg(statement).output().unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn each_tampering_is_caught_and_the_entry_named() {
    let hsm = SoftHsm::new();
    let (a, b) = busy_root(&hsm);
    verify_ok(&hsm, "root");
    let log = std::fs::read(hsm.path("root/audit.log")).unwrap();
    let lines = log.iter().filter(|c| **c == b'\n').count();
    // The kinds of change the issue names, each with the entry it is in.
    let line = tampered(&hsm, |d| edit_line(d, |l| l[4] = l[4].replace("tls-server", "tls-client")));
    assert!(line.contains("entry 5:") && line.contains("was edited"), "{line}");
    let line = tampered(&hsm, |d| edit_line(d, |l| drop(l.remove(6))));
    assert!(line.contains("entry 7: missing: line 7 holds entry 8 (a line was deleted)"), "{line}");
    let line = tampered(&hsm, |d| edit_line(d, |l| l.swap(8, 9)));
    assert!(line.contains("entries 9 and 10 are in reverse order"), "{line}");
    let line = tampered(&hsm, |d| sql(d, "INSERT INTO certs (serial, state, subject, not_after, created_at, cert_der) VALUES ('0BADC0DE', 'issued', '/CN=ghost', 1, 1, x'3000')"));
    assert!(line.contains("ca.db holds serial 0BADC0DE (issued) and no entry of audit.log records it"), "{line}");
    let line = tampered(&hsm, |d| sql(d, &format!("DELETE FROM certs WHERE serial = '{b}'")));
    assert!(line.contains(&format!("serial {b} (issued) is not in ca.db")) && line.starts_with("hsm-demo: copy: audit.log does not hold: entry "), "{line}");
    // Every column of a certificate row, one change at a time.
    for (column, change) in [
        ("state", "state = 'abandoned', cert_der = NULL"),
        ("subject", "subject = '/CN=b.examplf'"),
        ("profile", "profile = 'tls-client'"),
        ("not_before", "not_before = not_before + 1"),
        ("not_after", "not_after = not_after + 1"),
        ("created_at", "created_at = created_at - 1"),
        ("cert_sha256", "cert_der = substr(cert_der, 1, 100) || x'ff' || substr(cert_der, 102)"),
        ("revoked_at", "revoked_at = 1"),
        ("reason", "reason = 1, revoked_at = 1"),
    ] {
        let line = tampered(&hsm, |d| sql(d, &format!("UPDATE certs SET {change} WHERE serial = '{b}'")));
        assert!(line.contains(&format!("serial {b}: ca.db's record differs from this entry in ")) && line.contains(column), "{column}: {line}");
    }
    let line = tampered(&hsm, |d| sql(d, &format!("UPDATE certs SET reason = 4 WHERE serial = '{a}'")));
    assert!(line.contains(&format!("serial {a}: ca.db's record differs")) && line.contains("reason"), "{line}");
    let line = tampered(&hsm, |d| sql(d, "UPDATE crls SET next_update = next_update + 86400"));
    assert!(line.contains("CRL number 1: ca.db's record differs from this entry"), "{line}");
    let line = tampered(&hsm, |d| std::fs::write(d.join("transcript.txt"), b"another ceremony\n").unwrap());
    assert!(line.contains("entry 1: it does not chain to transcript.txt"), "{line}");
    std::fs::write(hsm.path("root.crl"), b"not the CRL").unwrap();
    let line = fails_with(hsm.cmd().args(["verify-audit", "root"]), 1);
    assert!(line.contains("root.crl no longer holds what this entry wrote to it"), "{line}");
    std::fs::remove_file(hsm.path("root.crl")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(hsm.path("root.crl")).status().unwrap().success());
    let line = fails_with(hsm.cmd().args(["verify-audit", "root"]), 1);
    assert!(line.contains("root.crl is no longer the regular file this entry wrote"), "{line}");
    std::fs::remove_file(hsm.path("root.crl")).unwrap();
    let out = verify_ok(&hsm, "root");
    assert!(out.contains("1 output file(s) the entries name are not at their paths"), "{out}");
    // A single byte of audit.log changed: exit 1 naming an entry. Every byte of the
    // first and the last two lines (the start, the last commit and its checkpoint),
    // every 7th elsewhere (each run is a process; all of them take 90 s here).
    let first_end = log.iter().position(|c| *c == b'\n').unwrap();
    let tail_start = log[..log.len() - 1].iter().rposition(|c| *c == b'\n').map(|p| log[..p].iter().rposition(|c| *c == b'\n').unwrap()).unwrap();
    for (i, byte) in log.iter().enumerate().filter(|(i, _)| *i <= first_end || *i >= tail_start || i % 7 == 0) {
        let mut changed = log.clone();
        changed[i] = if *byte == b'0' { b'1' } else if *byte == b'\n' { b' ' } else { b'0' };
        std::fs::write(hsm.path("root/audit.log"), &changed).unwrap();
        let out = hsm.cmd().args(["verify-audit", "root"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "byte {i} ({:?}) changed: {err}", *byte as char);
        assert!(err.contains("entry ") || err.contains("without a newline"), "byte {i}: {err}");
    }
    std::fs::write(hsm.path("root/audit.log"), &log).unwrap();
    // Cut after a checkpoint (with the records it covered): it verifies, with another
    // head; only the witness sheet's head tells.
    let head = |out: &str| out.lines().last().unwrap().to_string();
    let full = head(&verify_ok(&hsm, "root"));
    let cut: Vec<&str> = std::str::from_utf8(&log).unwrap().lines().collect();
    let at = cut.iter().rposition(|l| l.contains("\"checkpoint\"") && l != cut.last().unwrap()).unwrap();
    let short = tampered_ok(&hsm, |d| {
        std::fs::write(d.join("audit.log"), cut[..=at].join("\n") + "\n").unwrap();
        sql(d, "DELETE FROM crls");
    });
    assert_ne!(head(&short), full);
    assert!(head(&short).contains(&format!("entry {} ", at + 1)), "{short}");
    assert!(lines > at + 1);
}

fn tampered_ok(hsm: &SoftHsm, change: impl FnOnce(&std::path::Path)) -> String {
    changed_copy(hsm, change);
    verify_ok(hsm, "copy")
}

#[test]
fn a_directory_made_before_the_log_is_adopted_with_its_records() {
    let hsm = SoftHsm::new();
    busy_root(&hsm);
    // As a directory from before this change: records, no log.
    std::fs::remove_file(hsm.path("root/audit.log")).unwrap();
    fails_with(hsm.cmd().args(["verify-audit", "root"]), 2);
    ok(hsm.cmd().args(["list-issued", "--ca", "root"]));
    let e = entries(&hsm, "root");
    assert_eq!(e[1]["command"], "adopt");
    let records = e.iter().filter(|x| x["type"] == "record").count();
    assert_eq!(records, 2);
    assert_eq!(e.iter().filter(|x| x["type"] == "crl-record").count(), 1);
    assert!(e.iter().any(|x| x["type"] == "record" && x["revoked_at"].is_i64() && x["cert_sha256"].is_string()));
    assert_eq!(e.last().unwrap()["type"], "commit");
    verify_ok(&hsm, "root");
    ok(hsm.cmd().args(["crl", "--ca", "root", "--out", "again.crl"]));
    let out = verify_ok(&hsm, "root");
    assert!(out.contains("1 checkpoint signature(s)"), "{out}");
}

#[test]
fn a_kill_inside_c_sign_leaves_a_log_that_verifies_with_the_abandoned_serial() {
    let hsm = SoftHsm::new();
    root(&hsm);
    ok(hsm.cmd().args(["issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", "a.pem"]));
    let fault = hsm.fault_module("kill-on-sign");
    let out = hsm
        .cmd()
        .args(["--module", fault.to_str().unwrap(), "issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", "b.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "killed while the token signed: {out:?}");
    // Killed: the group is open, the serial pending; verify says so and passes.
    assert_eq!(entries(&hsm, "root").last().unwrap()["type"], "issue");
    let out = verify_ok(&hsm, "root");
    assert!(out.contains("belong to a command that has not finished"), "{out}");
    let pending = entries(&hsm, "root").last().unwrap()["serial"].as_str().unwrap().to_string();
    // The next command closes it as abandoned, with the serial's record.
    let next = hsm.cmd().args(["list-issued", "--ca", "root"]).output().unwrap();
    let note = String::from_utf8_lossy(&next.stderr);
    assert!(note.contains("did not finish; it is recorded as abandoned"), "{note}");
    let e = entries(&hsm, "root");
    let last = e.last().unwrap();
    assert_eq!(last["type"], "abandoned");
    assert_eq!(last["records"][0]["serial"].as_str().unwrap(), pending);
    assert_eq!(last["records"][0]["state"], "abandoned");
    let out = verify_ok(&hsm, "root");
    assert!(out.contains("its 2 certificate record(s)"), "{out}");
    assert!(out.contains("come after the last checkpoint"), "{out}");
    ok(hsm.cmd().args(["crl", "--ca", "root", "--out", "root.crl"]));
    let out = verify_ok(&hsm, "root");
    assert!(!out.contains("after the last checkpoint"), "{out}");
    // A line cut by a kill mid-write is removed by the next command.
    std::fs::OpenOptions::new().append(true).open(hsm.path("root/audit.log")).map(|mut f| std::io::Write::write_all(&mut f, b"{\"seq\":99,\"pr")).unwrap().unwrap();
    let line = fails_with(hsm.cmd().args(["verify-audit", "root"]), 1);
    assert!(line.contains("without a newline"), "{line}");
    let next = hsm.cmd().args(["list-issued", "--ca", "root"]).output().unwrap();
    assert!(String::from_utf8_lossy(&next.stderr).contains("cut short by an interrupted write"));
    verify_ok(&hsm, "root");
}

#[test]
fn concurrent_issuers_leave_one_chain() {
    let hsm = SoftHsm::new();
    root(&hsm);
    let children: Vec<_> = (0..4)
        .map(|i| hsm.spawnable(SO_PIN, &["issue", "--ca", "root", "--csr", "a.csr", "--profile", "tls-server", "--out", &format!("c{i}.pem")]).spawn().unwrap())
        .collect();
    let revoker = hsm.spawnable(SO_PIN, &["crl", "--ca", "root", "--out", "c.crl"]).spawn().unwrap();
    for mut c in children.into_iter().chain([revoker]) {
        assert!(c.wait().unwrap().success());
    }
    let e = entries(&hsm, "root");
    assert_eq!(e.iter().filter(|x| x["type"] == "issue").count(), 4);
    assert_eq!(e.iter().filter(|x| x["type"] == "checkpoint").count(), 5);
    // Groups never interleave: each begin is followed by its own entries and commit.
    for (i, x) in e.iter().enumerate() {
        if x["type"] == "commit" {
            assert_eq!(e[x["begin"].as_u64().unwrap() as usize - 1]["type"], "begin", "{i}");
            assert!(e[x["begin"].as_u64().unwrap() as usize..i].iter().all(|y| y["type"] != "begin" && y["type"] != "checkpoint"));
        }
    }
    let out = verify_ok(&hsm, "root");
    assert!(out.contains("its 4 certificate record(s)"), "{out}");
}

/// The last `n` entries' types and commands.
fn last_commands(hsm: &SoftHsm, dir: &str) -> Vec<String> {
    entries(hsm, dir).iter().filter(|e| e["type"] == "begin").map(|e| e["command"].as_str().unwrap().to_string()).collect()
}

#[test]
fn backup_restore_redeal_and_delete_are_recorded_with_their_files() {
    let hsm = SoftHsm::new();
    hsm.add_token("spare");
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args([
        "--token", "test-hsm", "key-ceremony", "--quorum", "2/3", "--activation-quorum", "2/3", "--backup-quorum", "2/3", "--out", "c", "--label", "root",
    ]));
    let pin_shares = ["--pin-share", "c/activation-share-1-of-3.json", "--pin-share", "c/activation-share-2-of-3.json"];
    // A backup for another site, recorded in the root's log with a checkpoint.
    let mut cmd = hsm.cmd();
    cmd.env_remove("HSM_DEMO_PIN").args(["--token", "test-hsm"]).args(pin_shares).args([
        "key-backup", "--label", "root", "--so-share", "c/share-1-of-3.json", "--so-share", "c/share-3-of-3.json",
        "--share", "c/backup-share-1-of-3.json", "--share", "c/backup-share-2-of-3.json", "--out", "site-b.wrapped", "--ca", "c", "--note", "copy for site B",
    ]);
    ok(&mut cmd);
    let e = entries(&hsm, "c");
    let n = e.len();
    assert_eq!(e[n - 1]["type"], "checkpoint");
    let (begin, commit) = (&e[n - 3], &e[n - 2]);
    assert_eq!(begin["command"], "key-backup");
    assert_eq!(begin["note"], "copy for site B");
    assert_eq!(begin["inputs"]["shares"][1]["sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("c/backup-share-2-of-3.json")).unwrap()));
    assert_eq!(commit["outputs"]["out_sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("site-b.wrapped")).unwrap()));
    // Restored at site B onto another token: recorded, the checkpoint signed there.
    ok(hsm.cmd().args([
        "--token", "spare", "key-restore", "--wrapped", "site-b.wrapped", "--share", "c/backup-share-2-of-3.json", "--share", "c/backup-share-3-of-3.json", "--ca", "c",
    ]));
    let e = entries(&hsm, "c");
    let restore = &e[e.len() - 3];
    assert_eq!(restore["command"], "key-restore");
    assert_eq!(restore["token"]["label"], "spare");
    assert_eq!(restore["inputs"]["wrapped"][0]["sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("site-b.wrapped")).unwrap()));
    // A re-deal of the activation quorum: old and new share files by digest.
    let mut cmd = hsm.cmd();
    cmd.env_remove("HSM_DEMO_PIN").args([
        "--token", "test-hsm", "quorum-redeal", "--role", "user", "--share", "c/activation-share-1-of-3.json", "--share", "c/activation-share-3-of-3.json",
        "--out", "r1", "--sign-with", "root", "--ca", "c",
    ]);
    ok(&mut cmd);
    let e = entries(&hsm, "c");
    let commit = &e[e.len() - 2];
    let files = commit["outputs"]["files"].as_array().unwrap();
    let new_share = files.iter().find(|f| f["file"].as_str().unwrap().ends_with("activation-share-1-of-3.json")).unwrap();
    assert_eq!(new_share["sha256"].as_str().unwrap(), hex_sha256(&std::fs::read(hsm.path("r1/activation-share-1-of-3.json")).unwrap()));
    assert_eq!(e[e.len() - 3]["inputs"]["role"], "user");
    // Deleting the restored copy with --force: begun before, committed after; no
    // checkpoint (the key is gone).
    ok(hsm.cmd().args(["--token", "spare", "delete-key", "--label", "root", "--confirm", "root", "--ca", "c", "--force"]));
    assert_eq!(last_commands(&hsm, "c"), ["adopt", "key-backup", "key-restore", "quorum-redeal", "delete-key"]);
    let e = entries(&hsm, "c");
    assert_eq!(e.last().unwrap()["type"], "commit");
    assert_eq!(e[e.len() - 2]["inputs"]["label"], "root");
    let out = verify_ok(&hsm, "c");
    assert!(out.contains("3 checkpoint signature(s)"), "{out}");
    assert!(out.contains(&format!("entries {} to {} come after the last checkpoint", e.len() - 1, e.len())), "{out}");
    // A --ca whose key is another: refused before any token work, nothing recorded.
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["--token", "spare", "key-ceremony", "--no-quorum", "--out", "c2", "--label", "root2"]));
    ok(hsm.cmd().args(["list-issued", "--ca", "c2"]));
    let before = std::fs::read(hsm.path("c2/audit.log")).unwrap();
    let line = fails_with(
        hsm.cmd().args(["--token", "spare", "key-restore", "--wrapped", "site-b.wrapped", "--share", "c/backup-share-1-of-3.json", "--share", "c/backup-share-3-of-3.json", "--label", "again", "--ca", "c2"]),
        2,
    );
    assert!(line.contains("--ca c2: its CA key is not the key in site-b.wrapped; nothing was changed"), "{line}");
    assert_eq!(std::fs::read(hsm.path("c2/audit.log")).unwrap(), before);
    let keys = ok(hsm.cmd().args(["--token", "spare", "list-keys"]));
    assert!(!keys.contains("again"), "{keys}");
}
