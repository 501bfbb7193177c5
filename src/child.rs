//! The hidden child processes hsm-demo starts itself, both sides of one protocol:
//! the ceremony's SO steps (set the SO PIN, prove the new SO or user PIN in a fresh
//! PKCS#11 application) and the workers of `bench --processes`.
//!
//! - One way to start them ([`Launcher::spawn`]): `hsm-demo __hsm-demo-child NAME`, a
//!   cleared environment plus what the PKCS#11 module and the provider read from it
//!   (never a PIN), stdout and stdin piped, stderr inherited or captured.
//! - One framing on both pipes: frames of a 4-byte big-endian length and that many
//!   bytes. The parent sends a header frame (JSON, no secret in it) and then the
//!   child's secrets, one frame each; buffers holding secrets are zeroized.
//! - One enum, [`Child`], matched exhaustively where the child runs
//!   (`commands::child`). A child's exit status is chosen by error.rs.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The first argument that makes a process a child.
pub const ARG: &str = "__hsm-demo-child";

/// The largest frame accepted (a header or a secret; PINs are capped far below).
const MAX_FRAME: u32 = 64 * 1024;

/// The hidden children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// Secrets: current SO PIN, new SO PIN. C_Login as SO, C_SetPIN, an SO login with
    /// the new PIN.
    SetSoPin,
    /// Secrets: new PIN, old PIN. The old SO PIN is refused and the new one accepted.
    ProveSo,
    /// Secrets: new PIN, old PIN. The same for the user PIN.
    ProveUser,
    /// Secrets: the user PIN. Logs in, frames "ready", waits for a "go" frame, runs the
    /// signing paths and prints the JSON report.
    BenchWorker,
    /// Secrets: the SO PIN, the backup wrap secret. C_Login as SO, the trusted AES-256
    /// wrap key created as a public token object labelled as the header says.
    InstallWrapKey,
}

impl Child {
    const ALL: [Child; 5] = [Child::SetSoPin, Child::ProveSo, Child::ProveUser, Child::BenchWorker, Child::InstallWrapKey];

    fn name(self) -> &'static str {
        match self {
            Child::SetSoPin => "set-so-pin",
            Child::ProveSo => "prove-so-pin",
            Child::ProveUser => "prove-user-pin",
            Child::BenchWorker => "bench-worker",
            Child::InstallWrapKey => "install-wrap-key",
        }
    }

    /// Whether the child loads the pkcs11-provider (and so gets the variables it reads).
    fn loads_provider(self) -> bool {
        matches!(self, Child::BenchWorker)
    }

    /// How many secret frames follow the header.
    pub fn secrets(self) -> usize {
        match self {
            Child::SetSoPin | Child::ProveSo | Child::ProveUser | Child::InstallWrapKey => 2,
            Child::BenchWorker => 1,
        }
    }

    /// The child this process is, if it was started as one: exactly `[exe, ARG, name]`.
    pub fn from_args(args: &[OsString]) -> Option<Child> {
        match args {
            [_, arg, name] if arg == ARG => Child::ALL.into_iter().find(|c| name == c.name()),
            _ => None,
        }
    }
}

/// What a child is told besides its secrets: nothing secret.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Header {
    /// The PKCS#11 module and, for SoftHSM2, the config in effect.
    pub module: PathBuf,
    pub softhsm_conf: Option<PathBuf>,
    pub embedded: bool,
    /// The token, by serial (SO steps).
    pub serial: Option<String>,
    /// The pkcs11-provider's .so (bench workers).
    pub provider: Option<PathBuf>,
    /// The key (bench workers).
    pub key_uri: Option<String>,
    /// Signatures per path (bench workers).
    pub count: Option<usize>,
    /// The label of the object to create (the wrap key).
    pub label: Option<String>,
    /// The parent's pid: a bench worker dies with its parent (PR_SET_PDEATHSIG), and
    /// checks after setting it that this parent is still there.
    pub parent: Option<u32>,
}

impl Header {
    /// The module to load in the child. No store guard: the parent checked the store
    /// and holds its lock, and marks the changes its children make.
    pub fn module_spec(&self) -> crate::token::ModuleSpec {
        crate::token::ModuleSpec {
            path: self.module.clone(),
            softhsm_conf: self.softhsm_conf.clone(),
            embedded: self.embedded,
            copies: None,
        }
    }
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut frame = Zeroizing::new(Vec::with_capacity(4 + bytes.len()));
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(bytes);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame (zeroized when dropped: it may be a secret).
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("a frame of {len} bytes (at most {MAX_FRAME})")));
    }
    let mut buf = Zeroizing::new(vec![0u8; len as usize]);
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// The child side: the header and the secrets from stdin.
pub fn read_request(child: Child) -> std::io::Result<(Header, Vec<Zeroizing<Vec<u8>>>)> {
    let mut stdin = std::io::stdin().lock();
    let header: Header = serde_json::from_slice(&read_frame(&mut stdin)?)
        .map_err(|e| std::io::Error::other(format!("the child's header: {e}")))?;
    let secrets = (0..child.secrets()).map(|_| read_frame(&mut stdin)).collect::<std::io::Result<_>>()?;
    Ok((header, secrets))
}

/// A child that died with its parent: PR_SET_PDEATHSIG, then whether the parent that
/// started it is still the parent (it may have died between the fork and the prctl).
pub fn die_with_parent(header: &Header) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
    match (header.parent, parent) {
        (Some(expected), Some(now)) if expected == now => Ok(()),
        _ => Err(std::io::Error::other("the parent process is gone")),
    }
}

/// How children are started: this executable, the environment the module (and, for a
/// child that loads it, the provider) reads (no PIN variable is ever in it), and the
/// header's module fields.
pub struct Launcher {
    /// What the PKCS#11 module reads.
    pub module_env: Vec<(&'static str, OsString)>,
    /// What the pkcs11-provider reads (PKCS11_PROVIDER_MODULE), for children that load it.
    pub provider_env: Vec<(&'static str, OsString)>,
    pub header: Header,
}

/// A running child with its pipes.
pub struct Running {
    pub process: std::process::Child,
    pub stdin: Option<std::process::ChildStdin>,
    pub stdout: std::process::ChildStdout,
}

impl Launcher {
    /// Starts `child`, sends it the header (the launcher's, with `fill` applied) and
    /// `secrets`. With `capture_stderr`, the child's stderr is piped for the caller to
    /// read (the SO steps' reasons); otherwise inherited.
    pub fn spawn(
        &self,
        child: Child,
        fill: impl FnOnce(&mut Header),
        secrets: &[&[u8]],
        capture_stderr: bool,
    ) -> std::io::Result<Running> {
        debug_assert_eq!(secrets.len(), child.secrets());
        let mut header = self.header.clone();
        header.parent = Some(std::process::id());
        fill(&mut header);
        let mut process = Command::new(std::env::current_exe()?)
            .args([ARG, child.name()])
            .env_clear()
            .envs(self.module_env.iter().map(|(k, v)| (k, v)))
            .envs(self.provider_env.iter().filter(|_| child.loads_provider()).map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if capture_stderr { Stdio::piped() } else { Stdio::inherit() })
            .spawn()?;
        let mut stdin = process.stdin.take().expect("piped");
        let stdout = process.stdout.take().expect("piped");
        // A write error means the child is gone; its status says what it did.
        let sent = write_frame(&mut stdin, &serde_json::to_vec(&header).map_err(std::io::Error::other)?)
            .and_then(|()| secrets.iter().try_for_each(|s| write_frame(&mut stdin, s)));
        let stdin = sent.is_ok().then_some(stdin);
        Ok(Running { process, stdin, stdout })
    }
}
