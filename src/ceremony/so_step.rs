//! The ceremony's SO step (C_Login as SO, C_SetPIN) in a child process: both sides
//! of the protocol. The child is `hsm-demo --module M --serial S __set-so-pin`, the
//! current and the new SO PIN one per line on its stdin, and its exit status says what
//! happened to the PIN.
//!
//! Why a child: PKCS#11 refuses an SO login while the application has a read-only
//! session open (CKR_SESSION_READ_ONLY_EXISTS, PKCS#11 v2.40 §5.6 C_Login), and the
//! pkcs11-provider keeps read-only sessions in its pool. A separate process is a
//! separate PKCS#11 application, as an operator's SO console would be, and this
//! process keeps its user login and provider key.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use cryptoki::types::AuthPin;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::settings::Settings;
use crate::token::{Module, TokenError, TokenSelector};

/// The child's exit statuses.
pub mod status {
    /// The SO PIN was changed, and an SO login with the new one succeeded.
    pub const CHANGED: u8 = 0;
    /// The SO PIN is definitely unchanged (nothing reached C_SetPIN, or the token
    /// refused the PINs themselves).
    pub const UNCHANGED: u8 = 10;
    /// C_SetPIN succeeded, but logging out or the proof login with the new PIN failed.
    pub const CHANGED_UNPROVEN: u8 = 11;
    /// C_SetPIN failed in a way that does not say whether the token applied it.
    pub const UNKNOWN: u8 = 12;
}

/// What the SO step did to the PIN, as the parent learns it.
#[derive(Debug)]
pub enum Outcome {
    Changed,
    /// Definitely unchanged; the reason.
    Unchanged(String),
    /// Changed but not proven (or not known): whoever holds the shares must treat the
    /// new PIN as the one in force.
    ChangedOrUnknown(String),
}

/// Parent side: runs the child and reads its verdict. Anything but a status that
/// says "unchanged" counts as changed (a killed child, a crash, an unknown status).
pub fn set_so_pin(module: &Path, serial: &str, old: &AuthPin, new: &[u8]) -> Outcome {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return Outcome::Unchanged(format!("cannot find hsm-demo itself: {e}")),
    };
    let child = Command::new(exe)
        .arg("--module")
        .arg(module)
        .args(["--serial", serial, "__set-so-pin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Unchanged(format!("cannot start the SO step: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let mut input = Zeroizing::new(Vec::with_capacity(160));
        input.extend_from_slice(old.expose_secret().as_bytes());
        input.push(b'\n');
        input.extend_from_slice(new);
        input.push(b'\n');
        // A write error means the child is gone; its status below says what it did.
        let _ = stdin.write_all(&input);
    }
    let out = match child.wait_with_output() {
        Ok(out) => out,
        Err(e) => return Outcome::ChangedOrUnknown(format!("lost the SO step: {e}")),
    };
    let why = String::from_utf8_lossy(&out.stderr)
        .trim()
        .trim_start_matches("hsm-demo: ")
        .to_string();
    match out.status.code().and_then(|c| u8::try_from(c).ok()) {
        Some(status::CHANGED) => Outcome::Changed,
        Some(status::UNCHANGED) => Outcome::Unchanged(why),
        Some(status::CHANGED_UNPROVEN) => Outcome::ChangedOrUnknown(why),
        _ => Outcome::ChangedOrUnknown(format!(
            "the SO step ended with {} ({why})",
            out.status
        )),
    }
}

/// Child side (`__set-so-pin`): never returns an error to main's generic handler, so
/// its exit status is always one of [`status`].
pub fn child_main(settings: &Settings) -> ExitCode {
    let (code, message) = match child(settings) {
        Ok(()) => (status::CHANGED, None),
        Err((code, e)) => (code, Some(e)),
    };
    if let Some(e) = message {
        eprintln!("hsm-demo: {}", crate::error::one_line(&e));
    }
    ExitCode::from(code)
}

fn child(settings: &Settings) -> Result<(), (u8, anyhow::Error)> {
    let unchanged = |e: anyhow::Error| (status::UNCHANGED, e);
    let mut lines = std::io::stdin().lock().lines();
    let mut next = || -> anyhow::Result<AuthPin> {
        let line = Zeroizing::new(
            lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("__set-so-pin: expected two PIN lines on stdin"))??,
        );
        Ok(AuthPin::from(line.as_str()))
    };
    let (old, new) = (next().map_err(unchanged)?, next().map_err(unchanged)?);
    let spec = settings.module().map_err(|e| unchanged(anyhow::anyhow!(e)))?;
    let module = Module::open(&spec).map_err(|e| unchanged(e.into()))?;
    let selector = TokenSelector {
        serial: settings.serial.clone(),
        ..Default::default()
    };
    let token = module
        .select_token(&selector)
        .map_err(|e| unchanged(e.into()))?;
    let so = module
        .login_so(&token, &old)
        .map_err(|e| unchanged(e.into()))?;
    if let Err(e) = so.set_so_pin(&old, &new) {
        // The token refused the PINs themselves: nothing changed. Anything else (a
        // device or connection error) does not say whether the change was applied.
        let code = match e {
            TokenError::PinIncorrect { .. }
            | TokenError::PinInvalid { .. }
            | TokenError::PinLocked { .. } => status::UNCHANGED,
            _ => status::UNKNOWN,
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
