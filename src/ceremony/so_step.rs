//! The ceremony's SO steps in child processes: both sides of the protocol. The child
//! is `hsm-demo --module M --serial S <step>`, with two PINs one per line on its stdin,
//! a cleared environment (plus what a PKCS#11 module reads from it), and its exit
//! status says what happened.
//!
//! - `__set-so-pin` (current PIN, new PIN): C_Login as SO, C_SetPIN, and an SO login
//!   with the new PIN.
//! - `__prove-so-pin` / `__prove-user-pin` (new PIN, old PIN): at the end of the
//!   ceremony, a fresh process shows that the old PIN is refused and the new one opens
//!   the role.
//!
//! Why children: PKCS#11 refuses an SO login while the application has a read-only
//! session open (CKR_SESSION_READ_ONLY_EXISTS, PKCS#11 v2.40 §5.6 C_Login), and the
//! pkcs11-provider keeps read-only sessions in its pool. A separate process is a
//! separate PKCS#11 application, as an operator's SO console would be; the ceremony
//! keeps its user login and provider key. The parent holds the token lock for them.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use cryptoki::types::AuthPin;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::settings::Settings;
use crate::token::{Module, TokenError, TokenRef, TokenSelector};

/// The child steps' names on the command line.
pub const SET_SO_PIN: &str = "__set-so-pin";
pub const PROVE_SO_PIN: &str = "__prove-so-pin";
pub const PROVE_USER_PIN: &str = "__prove-user-pin";

/// Whose PIN a proof is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    SecurityOfficer,
    User,
}

/// The children's exit statuses.
pub mod status {
    /// `__set-so-pin`: changed, and an SO login with the new PIN succeeded.
    /// `__prove-so-pin`: the old PIN was refused and the new one opened the SO role.
    pub const OK: u8 = 0;
    /// The SO PIN is definitely unchanged (nothing reached C_SetPIN, or the token
    /// refused the PINs themselves).
    pub const UNCHANGED: u8 = 10;
    /// C_SetPIN succeeded, but logging out or the proof login with the new PIN failed.
    pub const CHANGED_UNPROVEN: u8 = 11;
    /// C_SetPIN failed in a way that does not say whether the token applied it.
    pub const UNKNOWN: u8 = 12;
    /// `__prove-so-pin`: the proof does not hold (the reason is on stderr).
    pub const PROOF_FAILED: u8 = 20;
}

/// What `__set-so-pin` did to the PIN, as the parent learns it.
#[derive(Debug)]
pub enum Outcome {
    Changed,
    /// Definitely unchanged; the reason.
    Unchanged(String),
    /// Changed but not proven, or not known: whoever holds the shares must treat the
    /// new PIN as the one in force.
    ChangedOrUnknown(String),
}

/// Runs a child step with `first` and `second` on its stdin; its status and stderr.
fn run_child(
    settings: &Settings,
    module: &Path,
    serial: &str,
    step: &str,
    first: &[u8],
    second: &[u8],
) -> Result<(Option<u8>, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find hsm-demo itself: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--module")
        .arg(module)
        .args(["--serial", serial, step])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Nothing but what a PKCS#11 module reads (no PIN, no OpenSSL configuration).
    cmd.envs(settings.module_environment());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the SO step: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = Zeroizing::new(Vec::with_capacity(160));
        input.extend_from_slice(first);
        input.push(b'\n');
        input.extend_from_slice(second);
        input.push(b'\n');
        // A write error means the child is gone; its status says what it did.
        let _ = stdin.write_all(&input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("lost the SO step: {e}"))?;
    let why = String::from_utf8_lossy(&out.stderr)
        .trim()
        .trim_start_matches("hsm-demo: ")
        .to_string();
    let code = out.status.code().and_then(|c| u8::try_from(c).ok());
    let why = match code {
        Some(_) => why,
        None => format!("the SO step ended with {} {why}", out.status),
    };
    Ok((code, why))
}

/// Parent side of `__set-so-pin`. Anything but a status that says "unchanged" counts
/// as changed (a killed child, a crash, an unknown status).
pub fn set_so_pin(
    settings: &Settings,
    module: &Path,
    serial: &str,
    old: &AuthPin,
    new: &[u8],
) -> Outcome {
    let old = old.expose_secret().as_bytes();
    match run_child(settings, module, serial, SET_SO_PIN, old, new) {
        // The child never ran.
        Err(why) => Outcome::Unchanged(why),
        Ok((Some(status::OK), _)) => Outcome::Changed,
        Ok((Some(status::UNCHANGED), why)) => Outcome::Unchanged(why),
        Ok((_, why)) => Outcome::ChangedOrUnknown(why),
    }
}

/// Parent side of the proof: Ok when a fresh process found the old PIN of `role`
/// refused and the new one accepted.
pub fn prove_pin(
    settings: &Settings,
    (module, serial): (&Path, &str),
    role: Role,
    new: &[u8],
    old: &AuthPin,
) -> Result<(), String> {
    let old = old.expose_secret().as_bytes();
    let step = match role {
        Role::SecurityOfficer => PROVE_SO_PIN,
        Role::User => PROVE_USER_PIN,
    };
    match run_child(settings, module, serial, step, new, old)? {
        (Some(status::OK), _) => Ok(()),
        (_, why) => Err(why),
    }
}

/// Child side: never returns an error to main's generic handler, so its exit status
/// is always one of [`status`].
pub fn child_main(settings: &Settings, step: &str) -> ExitCode {
    let result = match step {
        PROVE_SO_PIN => prove_child(settings, Role::SecurityOfficer),
        PROVE_USER_PIN => prove_child(settings, Role::User),
        _ => set_child(settings),
    };
    let code = match result {
        Ok(()) => status::OK,
        Err((code, e)) => {
            crate::console::error_line(&crate::error::one_line(&e));
            code
        }
    };
    ExitCode::from(code)
}

type ChildResult = Result<(), (u8, anyhow::Error)>;

/// The two PIN lines, the module and the token (by the serial the parent passed).
fn child_setup(settings: &Settings) -> anyhow::Result<(AuthPin, AuthPin, Module, TokenRef)> {
    let mut lines = std::io::stdin().lock().lines();
    let mut next = || -> anyhow::Result<AuthPin> {
        let line = Zeroizing::new(
            lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("SO step: expected two PIN lines on stdin"))??,
        );
        Ok(AuthPin::from(line.as_str()))
    };
    let (first, second) = (next()?, next()?);
    let module = Module::open(&settings.module().map_err(|e| anyhow::anyhow!(e))?)?;
    let selector = TokenSelector {
        serial: settings.serial.clone(),
        ..Default::default()
    };
    let token = module.select_token(&selector)?;
    Ok((first, second, module, token))
}

fn set_child(settings: &Settings) -> ChildResult {
    let unchanged = |e: anyhow::Error| (status::UNCHANGED, e);
    let (old, new, module, token) = child_setup(settings).map_err(unchanged)?;
    let so = module
        .login_so(&token, &old)
        .map_err(|e| unchanged(e.into()))?;
    if let Err(e) = so.set_so_pin(&old, &new) {
        let code = if e.pin_refused() {
            status::UNCHANGED
        } else {
            status::UNKNOWN
        };
        return Err((code, e.into()));
    }
    let unproven = |e: TokenError| {
        (
            status::CHANGED_UNPROVEN,
            anyhow::Error::from(e)
                .context("the SO PIN was changed, but logging in with the new one failed"),
        )
    };
    so.logout().map_err(unproven)?;
    drop(so);
    module
        .login_so(&token, &new)
        .and_then(|s| s.logout())
        .map_err(unproven)
}

/// The old PIN first: a refused login counts towards the token's lockout, and the
/// successful one after it resets that count.
fn prove_child(settings: &Settings, role: Role) -> ChildResult {
    let failed = |e: anyhow::Error| (status::PROOF_FAILED, e);
    let (new, old, module, token) = child_setup(settings).map_err(failed)?;
    // A session that logged in is dropped at once: closing the process's last session
    // logs it out (PKCS#11 v2.40 §5.6).
    let login = |pin: &AuthPin| match role {
        Role::SecurityOfficer => module.login_so(&token, pin).map(drop),
        Role::User => module.login_user(&token, pin).map(drop),
    };
    let name = match role {
        Role::SecurityOfficer => "SO",
        Role::User => "user",
    };
    match login(&old) {
        Err(TokenError::PinIncorrect { .. }) => {}
        Ok(()) => {
            return Err(failed(anyhow::anyhow!(
                "the OLD {name} PIN still opens the {name} role: the change was undone or never applied"
            )));
        }
        Err(e) => return Err(failed(anyhow::Error::from(e).context(format!("try the old {name} PIN")))),
    }
    login(&new).map_err(|e| {
        failed(anyhow::Error::from(e).context(format!("the new {name} PIN does not open the {name} role")))
    })
}
