//! Test fixture: a SoftHSM2 token store in a TempDir with its own softhsm2.conf, and
//! commands (hsm-demo, openssl, pkcs11-tool) wired to it with a clean environment.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use tempfile::TempDir;

pub const SO_PIN: &str = "12345678";
pub const USER_PIN: &str = "123456";
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

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
        let out = StdCommand::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                USER_PIN,
            ])
            .output()
            .expect("softhsm2-util runs (scripts/setup.sh installs softhsm2)");
        assert!(
            out.status.success(),
            "softhsm2-util failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `hsm-demo` with a clean environment: this store's SOFTHSM2_CONF, HOME inside the
    /// TempDir, the user PIN in HSM_DEMO_PIN.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare_cmd();
        cmd.env("SOFTHSM2_CONF", &self.conf)
            .env("HSM_DEMO_PIN", USER_PIN);
        cmd
    }

    /// `hsm-demo` with a clean environment and no token configuration at all.
    pub fn bare_cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("hsm-demo").unwrap();
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs hsm-demo and returns stdout, failing the test with stderr on error.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "hsm-demo {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `pkcs11-tool` against this store's SoftHSM module.
    pub fn pkcs11_tool(&self) -> StdCommand {
        let mut cmd = StdCommand::new("pkcs11-tool");
        cmd.env("SOFTHSM2_CONF", &self.conf)
            .args(["--module", SOFTHSM]);
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
    pub fn pkcs11_tool_so_init_pin(&self, so_pin: &str, new_pin: &str) -> std::process::Output {
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
        let out = self.run_ok(&["list-keys", "--json"]);
        serde_json::from_str(&out).unwrap()
    }

    /// Generates a key and returns its private-key URI.
    pub fn generate(&self, label: &str) -> String {
        let out = self.run_ok(&["generate-key", "--label", label]);
        line_value(&out, "uri:").expect("generate-key prints the URI")
    }
}

/// The text after `key` on the first line (trimmed) that starts with it.
pub fn line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

/// Runs hsm-demo (or any assert_cmd command) that must succeed; shows stderr if not.
pub fn succeeds(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert_success(&*cmd, out)
}

/// Fails the test, with both outputs, unless the command succeeded.
fn assert_success(cmd: &dyn std::fmt::Debug, out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
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

impl SoftHsm {
    /// The real `openssl` CLI with hsm-demo's provider config on this token store
    /// (the PIN for `-passin env:HSM_DEMO_PIN`).
    pub fn openssl(&self) -> StdCommand {
        let mut cmd = StdCommand::new("openssl");
        cmd.env("OPENSSL_CONF", provider_conf())
            .env("PKCS11_PROVIDER_MODULE", SOFTHSM)
            .env("SOFTHSM2_CONF", &self.conf)
            .env("HSM_DEMO_PIN", USER_PIN)
            .current_dir(self.dir.path());
        cmd
    }

    /// Writes `bytes` to a file in the TempDir and returns its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// Runs a std command, asserting success, and returns stdout.
pub fn ok(cmd: &mut StdCommand) -> String {
    let out = cmd.output().expect("command runs");
    let out = assert_success(&*cmd, out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The hex after "Signature: " in hsm-demo's output.
pub fn signature_hex(stdout: &str) -> String {
    line_value(stdout, "Signature:").expect("a Signature: line")
}
