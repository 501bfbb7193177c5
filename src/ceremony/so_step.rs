//! The ceremony's SO steps, run as child processes (`crate::child`): the parent side
//! here, and the child side that `commands::child` calls.
//!
//! - set the SO PIN (secrets: current PIN, new PIN): C_Login as SO, C_SetPIN, and an SO
//!   login with the new PIN.
//! - prove a PIN (secrets: new PIN, old PIN): at the end of the ceremony, a fresh
//!   process shows that the old PIN of the role is refused and the new one opens it.
//!
//! Why children: PKCS#11 refuses an SO login while the application has a read-only
//! session open (CKR_SESSION_READ_ONLY_EXISTS, PKCS#11 v2.40 §5.6 C_Login), and the
//! pkcs11-provider keeps read-only sessions in its pool. A separate process is a
//! separate PKCS#11 application, as an operator's SO console would be; the ceremony
//! keeps its user login and provider key. The parent holds the token lock for them.

use std::io::Read as _;

use cryptoki::types::AuthPin;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::child::{Child, Header, Launcher};
use crate::error::{step_failure_of, StepFailure};
use crate::token::{Module, Role, TokenError, TokenRef, TokenSelector};

/// What setting the SO PIN did, as the parent learns it.
#[derive(Debug)]
pub enum Outcome {
    Changed,
    /// Definitely unchanged; the reason.
    Unchanged(String),
    /// Changed but not proven, or not known: whoever holds the shares must treat the
    /// new PIN as the one in force.
    ChangedOrUnknown(String),
}

/// A step that could not run, or a proof that did not hold; the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProofFailed(pub String);

/// Runs `child` on the token `serial` with two secrets; its failure (None: it
/// succeeded) and its stderr, or Err when it could not be started.
fn run_child(launcher: &Launcher, child: Child, serial: &str, first: &[u8], second: &[u8]) -> Result<(Option<StepFailure>, String), ProofFailed> {
    run_child_with(launcher, child, serial, None, (first, second))
}

fn run_child_with(
    launcher: &Launcher,
    child: Child,
    serial: &str,
    label: Option<&str>,
    (first, second): (&[u8], &[u8]),
) -> Result<(Option<StepFailure>, String), ProofFailed> {
    let (serial, label) = (serial.to_string(), label.map(str::to_string));
    let running = launcher
        .spawn(
            child,
            |h| {
                h.serial = Some(serial);
                h.label = label;
            },
            &[first, second],
            true,
        )
        .map_err(|e| ProofFailed(format!("cannot start the SO step: {e}")))?;
    let mut process = running.process;
    drop(running.stdin);
    let mut stderr = String::new();
    if let Some(mut e) = process.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = process.wait().map_err(|e| ProofFailed(format!("lost the SO step: {e}")))?;
    let why = stderr.trim().trim_start_matches("hsm-demo: ").to_string();
    let code = status.code().and_then(|c| u8::try_from(c).ok());
    let failure = match code {
        Some(c) => step_failure_of(c),
        // Killed by a signal: nothing is known.
        None => Some(StepFailure::Unknown),
    };
    let why = match code {
        Some(_) => why,
        None => format!("the SO step ended with {status} {why}"),
    };
    Ok((failure, why))
}

/// Parent side of setting the SO PIN. Anything but a status that says "unchanged"
/// counts as changed (a killed child, a crash, an unknown status).
pub fn set_so_pin(launcher: &Launcher, serial: &str, old: &AuthPin, new: &[u8]) -> Outcome {
    let old = old.expose_secret().as_bytes();
    match run_child(launcher, Child::SetSoPin, serial, old, new) {
        // The child never ran.
        Err(ProofFailed(why)) => Outcome::Unchanged(why),
        Ok((None, _)) => Outcome::Changed,
        Ok((Some(StepFailure::Unchanged), why)) => Outcome::Unchanged(why),
        Ok((_, why)) => Outcome::ChangedOrUnknown(why),
    }
}

/// Parent side of the proof: Ok when a fresh process found the old PIN of `role`
/// refused and the new one accepted.
pub fn prove_pin(launcher: &Launcher, serial: &str, role: Role, new: &[u8], old: &AuthPin) -> Result<(), ProofFailed> {
    let old = old.expose_secret().as_bytes();
    let child = match role {
        Role::SecurityOfficer => Child::ProveSo,
        Role::User => Child::ProveUser,
    };
    match run_child(launcher, child, serial, new, old)? {
        (None, _) => Ok(()),
        (Some(_), why) => Err(ProofFailed(why)),
    }
}

/// Parent side of installing the backup wrap key: a fresh process logs in as SO and
/// creates the trusted AES-256 key `label` from `secret` (the SO cannot log in here
/// while the provider keeps read-only sessions open).
pub fn install_wrap_key(launcher: &Launcher, serial: &str, so_pin: &AuthPin, secret: &[u8], label: &str) -> Result<(), ProofFailed> {
    let so = so_pin.expose_secret().as_bytes();
    match run_child_with(launcher, Child::InstallWrapKey, serial, Some(label), (so, secret))? {
        (None, _) => Ok(()),
        (Some(_), why) => Err(ProofFailed(why)),
    }
}

/// A child step's failure: what it means for the PIN, and why.
pub type StepResult = Result<(), (StepFailure, anyhow::Error)>;

/// A PIN from the bytes of a secret frame: UTF-8, or refused (never a lossy conversion).
fn pin_of(bytes: &[u8]) -> anyhow::Result<AuthPin> {
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow::anyhow!("SO step: a PIN that is not UTF-8"))?;
    Ok(AuthPin::from(text))
}

/// The module and the token (by the serial the parent passed).
fn child_token(header: &Header) -> anyhow::Result<(Module, TokenRef)> {
    let module = Module::open(&header.module_spec())?;
    let selector = TokenSelector { serial: header.serial.clone(), ..Default::default() };
    let token = module.select_token(&selector)?;
    Ok((module, token))
}

/// Child side of setting the SO PIN (secrets: old, new).
pub fn set_child(header: &Header, secrets: &[Zeroizing<Vec<u8>>]) -> StepResult {
    let unchanged = |e: anyhow::Error| (StepFailure::Unchanged, e);
    let (old, new) = (pin_of(&secrets[0]).map_err(unchanged)?, pin_of(&secrets[1]).map_err(unchanged)?);
    let (module, token) = child_token(header).map_err(unchanged)?;
    let so = module.login_so(&token, &old).map_err(|e| unchanged(e.into()))?;
    if let Err(e) = so.set_so_pin(&old, &new) {
        let failure = if e.pin_refused() { StepFailure::Unchanged } else { StepFailure::Unknown };
        return Err((failure, e.into()));
    }
    let unproven = |e: TokenError| {
        (
            StepFailure::ChangedUnproven,
            anyhow::Error::from(e).context("the SO PIN was changed, but logging in with the new one failed"),
        )
    };
    so.logout().map_err(unproven)?;
    drop(so);
    module.login_so(&token, &new).and_then(|s| s.logout()).map_err(unproven)
}

/// Child side of a proof (secrets: new, old). The old PIN first: a refused login counts
/// towards the token's lockout, and the successful one after it resets that count.
pub fn prove_child(role: Role, header: &Header, secrets: &[Zeroizing<Vec<u8>>]) -> StepResult {
    let failed = |e: anyhow::Error| (StepFailure::ProofFailed, e);
    let (new, old) = (pin_of(&secrets[0]).map_err(failed)?, pin_of(&secrets[1]).map_err(failed)?);
    let (module, token) = child_token(header).map_err(failed)?;
    // A session that logged in is dropped at once: closing the process's last session
    // logs it out (PKCS#11 v2.40 §5.6).
    let login = |pin: &AuthPin| match role {
        Role::SecurityOfficer => module.login_so(&token, pin).map(drop),
        Role::User => module.login_user(&token, pin).map(drop),
    };
    let name = role.name();
    match login(&old) {
        Err(TokenError::PinIncorrect { .. }) => {}
        Ok(()) => {
            return Err(failed(anyhow::anyhow!(
                "the OLD {name} PIN still opens the {name} role: the change was undone or never applied"
            )));
        }
        Err(e) => return Err(failed(anyhow::Error::from(e).context(format!("try the old {name} PIN")))),
    }
    login(&new).map_err(|e| failed(anyhow::Error::from(e).context(format!("the new {name} PIN does not open the {name} role"))))
}

/// Child side of installing the wrap key (secrets: SO PIN, wrap secret).
pub fn install_wrap_key_child(header: &Header, secrets: &[Zeroizing<Vec<u8>>]) -> StepResult {
    let failed = |e: anyhow::Error| (StepFailure::Unchanged, e);
    let so = pin_of(&secrets[0]).map_err(failed)?;
    let label = header.label.as_deref().ok_or_else(|| failed(anyhow::anyhow!("no wrap key label")))?;
    let (module, token) = child_token(header).map_err(failed)?;
    let session = module.login_so(&token, &so).map_err(|e| failed(e.into()))?;
    session.install_wrap_key(&secrets[1], label).map_err(|e| failed(e.into()))?;
    session.logout().map_err(|e| failed(e.into()))
}
