//! opencryptoki's soft token behind a `pkcsslotd` this fixture starts and stops.
//!
//! opencryptoki keeps its configuration and token store at fixed places (the Debian
//! package's `/etc/opencryptoki/opencryptoki.conf`, token data in
//! `/var/lib/opencryptoki/swtok`, the token's shared memory in
//! `/dev/shm/var.lib.opencryptoki.swtok`, the daemon's socket and pid file in
//! `/var/run`): there is no temp-dir mode. So the fixture:
//! - takes a lock (one opencryptoki test at a time on this machine, across processes);
//! - refuses to run when another `pkcsslotd` is running (someone else's tokens);
//! - moves the machine's token store and shared memory aside (into `*.hsm-demo-saved`),
//!   gives the daemon an empty store, starts `pkcsslotd -f` as its child;
//! - on drop stops the daemon and puts back exactly what it found, removing what it
//!   made. A fixture that was killed leaves `*.hsm-demo-saved` behind; the next one
//!   restores it first.
//!
//! `/etc/opencryptoki/opencryptoki.conf` is read, never written: the package's default
//! lists the soft token as slot 3, and the slots whose libraries Debian does not ship
//! (ICA, EP11) are skipped by the daemon. The package's tmpfiles.d directories under
//! `/var/lock/opencryptoki` are made if missing (and removed again).

use std::fs::{self, File};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand};
use std::time::{Duration, Instant};

use super::Command;
use tempfile::TempDir;

pub const OCK_MODULE: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so";
const SLOTD: &str = "/usr/sbin/pkcsslotd";
const STORE: &str = "/var/lib/opencryptoki/swtok";
const SHM: &str = "/dev/shm/var.lib.opencryptoki.swtok";
const SOCKET: &str = "/var/run/pkcsslotd.socket";
const PID_FILE: &str = "/var/run/pkcsslotd.pid";
const LOCK_DIRS: [&str; 2] = ["/var/lock/opencryptoki", "/var/lock/opencryptoki/swtok"];
const SAVED: &str = ".hsm-demo-saved";

/// A fresh token's SO PIN (opencryptoki's documented default; its C_InitToken checks
/// the SO PIN given against it and keeps it) and the user PIN the tests set: the soft
/// token takes PINs of 4 to 8 characters.
pub const OCK_DEFAULT_SO_PIN: &str = "87654321";
pub const OCK_USER_PIN: &str = "ock-us-1";

pub struct Opencryptoki {
    pub dir: TempDir,
    slotd: Child,
    made_lock_dirs: Vec<&'static str>,
    pid_file_existed: bool,
    /// opencryptoki's entries in /dev/shm before the daemon started.
    shm_before: Vec<PathBuf>,
    _lock: File,
}

fn saved(path: &str) -> PathBuf {
    PathBuf::from(format!("{path}{SAVED}"))
}

fn pkcs11_gid() -> u32 {
    let group = fs::read_to_string("/etc/group").expect("/etc/group");
    group
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"pkcs11")).then(|| f[2].parse().unwrap())
        })
        .expect("no pkcs11 group: scripts/setup.sh installs opencryptoki")
}

fn ock_shm() -> Vec<PathBuf> {
    fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("var.lib.opencryptoki"))
        .collect()
}

fn slotd_running() -> bool {
    fs::read_dir("/proc").unwrap().flatten().any(|e| {
        fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "pkcsslotd")
    })
}

/// Puts back what an earlier, killed fixture moved aside.
fn restore_saved() {
    for path in [STORE, SHM] {
        let s = saved(path);
        if s.exists() {
            if Path::new(path).is_dir() {
                fs::remove_dir_all(path).unwrap();
            } else if Path::new(path).exists() {
                fs::remove_file(path).unwrap();
            }
            fs::rename(&s, path).unwrap();
        }
    }
}

fn empty_dir(path: &str, gid: u32) {
    fs::create_dir(path).unwrap();
    chown(path, Some(0), Some(gid)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o770)).unwrap();
}

impl Opencryptoki {
    /// A daemon with one uninitialized soft token.
    pub fn empty() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "the opencryptoki tests need root: pkcsslotd and its token store live under /var (run the README's test command as root, as CI does)"
        );
        assert!(Path::new(SLOTD).is_file() && Path::new(OCK_MODULE).is_file(), "opencryptoki is not installed: scripts/setup.sh installs it");
        let lock = File::create(std::env::temp_dir().join("hsm-demo-opencryptoki.lock")).unwrap();
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
        restore_saved();
        assert!(
            !slotd_running(),
            "a pkcsslotd not started by these tests is running: its tokens are in {STORE}, which the tests would replace; stop it first"
        );
        let gid = pkcs11_gid();
        let mut made_lock_dirs = Vec::new();
        for d in LOCK_DIRS {
            if !Path::new(d).exists() {
                empty_dir(d, gid);
                made_lock_dirs.push(d);
            }
        }
        if Path::new(STORE).exists() {
            fs::rename(STORE, saved(STORE)).unwrap();
        }
        if Path::new(SHM).exists() {
            fs::rename(SHM, saved(SHM)).unwrap();
        }
        empty_dir(STORE, gid);
        empty_dir(&format!("{STORE}/TOK_OBJ"), gid);
        let pid_file_existed = Path::new(PID_FILE).exists();
        let shm_before = ock_shm();
        let dir = tempfile::tempdir().expect("tempdir");
        // The daemon's chatter goes to a log in the temp dir, not into the test output.
        let log = File::create(dir.path().join("pkcsslotd.log")).unwrap();
        let slotd = StdCommand::new(SLOTD)
            .arg("-f")
            .env_clear()
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pkcsslotd");
        let started = Instant::now();
        while !Path::new(SOCKET).exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "pkcsslotd did not create {SOCKET} in 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Opencryptoki {
            dir,
            slotd,
            made_lock_dirs,
            pid_file_existed,
            shm_before,
            _lock: lock,
        }
    }

    /// A daemon whose soft token hsm-demo initialized as `ock`, user PIN `OCK_USER_PIN`.
    pub fn new() -> Self {
        let ock = Self::empty();
        super::ok(ock.cmd().env("HSM_DEMO_SO_PIN", OCK_DEFAULT_SO_PIN).args(["init-token", "--label", "ock"]));
        ock
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Any program with a clean environment, run in the temp dir.
    pub fn tool(&self, program: &str) -> Command {
        super::clean_tool(program, self.dir.path())
    }

    /// hsm-demo on opencryptoki, with the user PIN.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.tool(env!("CARGO_BIN_EXE_hsm-demo"));
        cmd.env("HSM_DEMO_MODULE", OCK_MODULE).env("HSM_DEMO_PIN", OCK_USER_PIN);
        cmd
    }
}

impl Drop for Opencryptoki {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.slotd);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.slotd.wait();
        let _ = fs::remove_file(SOCKET);
        if !self.pid_file_existed {
            let _ = fs::remove_file(PID_FILE);
        }
        let _ = fs::remove_dir_all(STORE);
        let _ = fs::remove_file(SHM);
        for p in ock_shm() {
            if !self.shm_before.contains(&p) && !p.to_string_lossy().ends_with(SAVED) {
                let _ = fs::remove_file(p);
            }
        }
        restore_saved();
        for d in self.made_lock_dirs.iter().rev() {
            let _ = fs::remove_dir_all(d);
        }
    }
}
