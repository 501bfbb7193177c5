//! Test fixture: a SoftHSM2 token store in a TempDir with its own softhsm2.conf, and
//! every program the tests run (hsm-demo, openssl, pkcs11-tool, ...) as an assert_cmd
//! `Command` with a clean environment, so that every test asserts the same way:
//! `succeeds(cmd)` / `ok(cmd)` / `fails_with(cmd, code)`, or an `.assert()` chain.
//!
//! The PKCS#11 module comes from `HSM_DEMO_TEST_MODULE`, else the SoftHSM2 that
//! build.rs found (rust-cryptoki's tests take `TEST_PKCS11_MODULE` the same way).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub mod opencryptoki;

pub use assert_cmd::Command;
use tempfile::TempDir;

pub const SO_PIN: &str = "12345678";
pub const USER_PIN: &str = "123456";
pub const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

/// The SoftHSM2 module under test.
pub fn softhsm_module() -> String {
    std::env::var("HSM_DEMO_TEST_MODULE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| env!("HSM_DEMO_DEFAULT_SOFTHSM").to_string())
}

pub struct SoftHsm {
    pub dir: TempDir,
    pub conf: PathBuf,
    pub label: String,
}

impl SoftHsm {
    /// A token store with one initialized token, "test-hsm", made by softhsm2-util
    /// (an independent client, so hsm-demo's own init-token is not assumed).
    pub fn new() -> Self {
        let hsm = Self::empty();
        hsm.add_token("test-hsm");
        hsm
    }

    /// A token store with no initialized token.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        SoftHsm {
            dir,
            conf,
            label: "test-hsm".into(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn add_token(&self, label: &str) {
        ok(self.tool("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            SO_PIN,
            "--pin",
            USER_PIN,
        ]));
    }

    /// Any program with a clean environment (PATH only), HOME in the TempDir, this
    /// store's SOFTHSM2_CONF, run in the TempDir.
    pub fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", self.dir.path())
            .env("SOFTHSM2_CONF", &self.conf)
            .current_dir(self.dir.path());
        cmd
    }

    /// `hsm-demo` on this store: the module under test, the user PIN in HSM_DEMO_PIN.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare_cmd();
        cmd.env("SOFTHSM2_CONF", &self.conf)
            .env("HSM_DEMO_MODULE", softhsm_module())
            .env("HSM_DEMO_PIN", USER_PIN);
        cmd
    }

    /// `hsm-demo` on this store as a std Command, to spawn, wait for and kill: the same
    /// environment as [`SoftHsm::cmd`] (and `so_pin` in HSM_DEMO_SO_PIN), output
    /// discarded, in a process group of its own (its children die with it).
    pub fn spawnable(&self, so_pin: &str, args: &[&str]) -> std::process::Command {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hsm-demo"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", self.dir.path())
            .env("SOFTHSM2_CONF", &self.conf)
            .env("HSM_DEMO_MODULE", softhsm_module())
            .env("HSM_DEMO_PIN", USER_PIN)
            .env("HSM_DEMO_SO_PIN", so_pin)
            .current_dir(self.dir.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
        cmd
    }

    /// `hsm-demo` with a clean environment and no token configuration at all.
    pub fn bare_cmd(&self) -> Command {
        let mut cmd = self.tool(env!("CARGO_BIN_EXE_hsm-demo"));
        cmd.env_remove("SOFTHSM2_CONF");
        cmd
    }

    /// Runs hsm-demo, which must succeed, and returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        ok(self.cmd().args(args))
    }

    /// `pkcs11-tool` against this store's module.
    pub fn pkcs11_tool(&self) -> Command {
        let mut cmd = self.tool("pkcs11-tool");
        cmd.args(["--module", &softhsm_module()]);
        cmd
    }

    /// A key pair made by pkcs11-tool, an independent client (which, unlike hsm-demo,
    /// happily reuses labels).
    pub fn pkcs11_tool_keypair(&self, label: &str, id: &str, key_type: &str) {
        ok(self.pkcs11_tool().args([
            "--token-label",
            &self.label,
            "--login",
            "--pin",
            USER_PIN,
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            id,
        ]));
    }

    /// pkcs11-tool logs in as SO with `so_pin` and sets the user PIN to `new_pin`: proves
    /// which SO PIN the token has.
    pub fn pkcs11_tool_so_init_pin(&self, so_pin: &str, new_pin: &str) -> Output {
        self.pkcs11_tool()
            .args([
                "--token-label",
                &self.label,
                "--login",
                "--login-type",
                "so",
                "--so-pin",
                so_pin,
            ])
            .args(["--init-pin", "--new-pin", new_pin])
            .output()
            .unwrap()
    }

    /// The key objects hsm-demo lists, as JSON.
    pub fn keys_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.run_ok(&["list-keys", "--json"])).unwrap()
    }

    /// Generates a key and returns its private-key URI.
    pub fn generate(&self, label: &str) -> String {
        let out = self.run_ok(&["generate-key", "--label", label]);
        line_value(&out, "uri:").expect("generate-key prints the URI")
    }

    /// The real `openssl` CLI with hsm-demo's provider config on this token store
    /// (the PIN for `-passin env:HSM_DEMO_PIN`).
    pub fn openssl(&self) -> Command {
        let mut cmd = self.tool("openssl");
        cmd.env("OPENSSL_CONF", provider_conf())
            .env("PKCS11_PROVIDER_MODULE", softhsm_module())
            .env("HSM_DEMO_PIN", USER_PIN);
        cmd
    }

    /// The plain `openssl dgst -sha256 -verify` (no provider) accepts `sig` over `data`.
    pub fn openssl_verifies(&self, pubkey: &Path, sig: &Path, data: &Path) {
        let out = ok(self
            .tool("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(pubkey)
            .arg("-signature")
            .arg(sig)
            .arg(data));
        assert_eq!(out.trim(), "Verified OK");
    }

    /// Writes `bytes` to a file in the TempDir and returns its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// Runs a command that must succeed; returns its whole output.
pub fn succeeds(cmd: &mut Command) -> Output {
    cmd.assert().success().get_output().clone()
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(cmd: &mut Command) -> String {
    String::from_utf8(succeeds(cmd).stdout).expect("UTF-8 stdout")
}

/// Runs a command that must fail with `code`, and returns its stderr, which must be
/// exactly one line.
pub fn fails_with(cmd: &mut Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "expected one line on stderr, got: {text}"
    );
    text
}

/// The text after `key` on the first line (trimmed) that starts with it.
pub fn line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

/// Runs a pkilint tool (`lint_pkix_cert`, ...) from the project's virtualenv with `args`;
/// it must report nothing.
pub fn lint(hsm: &SoftHsm, tool: &str, args: &[&str]) {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pkilint-venv/bin").join(tool);
    let report = ok(hsm.tool(bin.to_str().unwrap()).arg("lint").args(args));
    assert!(report.trim().is_empty(), "{tool} {args:?}:\n{report}");
}

/// Counts PKCS#11 calls of one name in a pkcs11-spy log.
pub fn spy_calls(log: &Path, function: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(function))
        .count()
}

/// openssl-conf/pkcs11.cnf in this tree.
pub fn provider_conf() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl-conf/pkcs11.cnf")
}

/// The hex after "Signature: " in hsm-demo's output.
pub fn signature_hex(stdout: &str) -> String {
    line_value(stdout, "Signature:").expect("a Signature: line")
}

/// tests/fault/fault_pkcs11.c compiled (once per test binary; an atomic rename makes
/// concurrent builds by several test binaries safe) into target/fault/.
fn fault_library() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let dir = root.join("target/fault");
            std::fs::create_dir_all(&dir).unwrap();
            let out = dir.join("fault_pkcs11.so");
            let tmp = dir.join(format!("fault_pkcs11.{}.so", std::process::id()));
            let status = std::process::Command::new("cc")
                .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
                .arg(&tmp)
                .arg(root.join("tests/fault/fault_pkcs11.c"))
                .arg("-ldl")
                .status()
                .expect("a C compiler (cc)");
            assert!(status.success(), "building the fault-injecting module failed");
            std::fs::rename(&tmp, &out).unwrap();
            out
        })
        .clone()
}

impl SoftHsm {
    /// The fault-injecting PKCS#11 module over this store's SoftHSM, in `mode`
    /// (tests/fault/fault_pkcs11.c): a copy in the TempDir with its configuration.
    pub fn fault_module(&self, mode: &str) -> PathBuf {
        let path = self.path("fault_pkcs11.so");
        std::fs::copy(fault_library(), &path).unwrap();
        std::fs::write(
            self.path("fault_pkcs11.so.conf"),
            format!("real={}\nmode={mode}\n", softhsm_module()),
        )
        .unwrap();
        path
    }
}

/// The SO PIN a ceremony's share files (3 of 5) hold, recombined here with the Shamir
/// crate directly, not through hsm-demo.
pub fn recombine(dir: &Path, indexes: &[u8]) -> String {
    let shares: Vec<blahaj::Share> = indexes
        .iter()
        .map(|i| {
            let path = dir.join(format!("share-{i}-of-5.json"));
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let bytes = hex::decode(json["share"].as_str().unwrap()).unwrap();
            blahaj::Share::try_from(bytes.as_slice()).unwrap()
        })
        .collect();
    let secret = blahaj::Sharks(3).recover(&shares).unwrap();
    String::from_utf8(secret).unwrap()
}

/// kryoptic's module: `HSM_DEMO_TEST_KRYOPTIC`, else the one scripts/build-kryoptic.sh builds.
pub fn kryoptic_module() -> PathBuf {
    let path = std::env::var_os("HSM_DEMO_TEST_KRYOPTIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kryoptic/libkryoptic_pkcs11.so"));
    assert!(
        path.is_file(),
        "{} is missing: scripts/build-kryoptic.sh builds kryoptic",
        path.display()
    );
    path
}

/// `program` with a clean environment (PATH only), HOME and the working directory `home`.
pub fn clean_tool(program: &str, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .current_dir(home);
    cmd
}

/// After a ceremony with an SO quorum in `c/`: three of its five shares set `new_pin` as
/// the user PIN; the old user PIN is refused after that, the new one lists `root_label`.
/// `cmd` makes hsm-demo commands on the token with the old user PIN.
pub fn quorum_resets_user_pin(cmd: impl Fn() -> Command, new_pin: &str, root_label: &str) {
    ok(cmd().env("HSM_DEMO_NEW_PIN", new_pin).args([
        "quorum-reset-pin",
        "--share",
        "c/share-1-of-5.json",
        "--share",
        "c/share-3-of-5.json",
        "--share",
        "c/share-5-of-5.json",
    ]));
    fails_with(cmd().arg("list-keys"), 3);
    let keys = ok(cmd().env("HSM_DEMO_PIN", new_pin).arg("list-keys"));
    assert!(keys.contains(root_label), "{keys}");
}

/// kryoptic's PINs must be at least 8 characters.
pub const KRY_SO_PIN: &str = "kry-so-pin-1";
pub const KRY_USER_PIN: &str = "kry-user-pin-1";

/// A kryoptic token store in a TempDir: two sqlite slots in its own KRYOPTIC_CONF,
/// the first initialized by hsm-demo as "kry".
pub struct Kryoptic {
    pub dir: TempDir,
    pub conf: PathBuf,
}

impl Kryoptic {
    pub fn new() -> Self {
        let kry = Self::empty();
        ok(kry.cmd().env("HSM_DEMO_SO_PIN", KRY_SO_PIN).args(["init-token", "--label", "kry"]));
        kry
    }

    pub fn empty() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("kryoptic.toml");
        let slot = |n: u32| {
            format!(
                "[[slots]]\nslot = {n}\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
                dir.path().join(format!("token{n}.sql")).display()
            )
        };
        std::fs::write(&conf, format!("{}\n{}", slot(1), slot(2))).unwrap();
        Kryoptic { dir, conf }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Any program with a clean environment and this store's KRYOPTIC_CONF.
    pub fn tool(&self, program: &str) -> Command {
        let mut cmd = clean_tool(program, self.dir.path());
        cmd.env("KRYOPTIC_CONF", &self.conf);
        cmd
    }

    /// hsm-demo on kryoptic, with the user PIN.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.tool(env!("CARGO_BIN_EXE_hsm-demo"));
        cmd.env("HSM_DEMO_MODULE", kryoptic_module())
            .env("HSM_DEMO_PIN", KRY_USER_PIN);
        cmd
    }
}

/// The first initialized token of `list-slots --json`.
pub fn initialized_token(listing: &serde_json::Value) -> serde_json::Value {
    listing["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .find(|s| s["token"]["initialized"] == true)
        .expect("an initialized token")["token"]
        .clone()
}

/// Every `sh` block of the README from the line `start` up to `end` (the next text
/// `end` after `start`), joined in order.
pub fn readme_script(start: &str, end: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let from = readme.find(start).unwrap_or_else(|| panic!("README: {start:?} is missing"));
    let to = from + readme[from..].find(end).unwrap_or_else(|| panic!("README: {end:?} after {start:?} is missing"));
    let script: String = readme[from..to].split("```sh\n").skip(1).filter_map(|b| b.split("```").next()).collect();
    assert!(!script.is_empty(), "README: no sh block between {start:?} and {end:?}");
    script
}

/// Runs `script` as a user would (`bash -euo pipefail`, hsm-demo on PATH, a clean
/// environment but for `env`, a fresh HOME that is also the working directory), which
/// must succeed; the directory, stdout and stderr.
pub fn run_script(script: &str, env: &[(&str, &str)]) -> (TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_hsm-demo")).parent().unwrap().to_path_buf();
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env_clear()
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("HOME", dir.path())
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    (dir, stdout, stderr)
}

/// Starts `cmd`, kills its whole process group with SIGKILL after `micros`, waits.
pub fn kill_after(mut cmd: std::process::Command, micros: u64) {
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_micros(micros));
    let pgid = child.id().to_string();
    let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
    let _ = child.wait();
}

/// A ceremony with an SO quorum 2-of-3 and an activation quorum 2-of-3 into ./c.
pub fn two_quorum_ceremony(hsm: &SoftHsm) -> PathBuf {
    ok(hsm
        .cmd()
        .env("HSM_DEMO_SO_PIN", SO_PIN)
        .args(["key-ceremony", "--quorum", "2/3", "--activation-quorum", "2/3", "--out", "c"]));
    hsm.path("c")
}
