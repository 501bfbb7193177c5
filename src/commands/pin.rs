//! PIN sources: a file, the environment as the settings read it at start-up, or a
//! terminal prompt; never argv.
//!
//! PINs are held as `secrecy::SecretString` (cryptoki's `AuthPin`): zeroized on drop
//! and redacted by `Debug`, so they cannot reach a log or an error message.

use std::path::Path;

use anyhow::Context;
use cryptoki::types::AuthPin;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::error::usage;
pub use crate::settings::PinSource;
use crate::settings::{EnvPin, Settings};

impl PinSource {
    pub fn file_flag(self) -> &'static str {
        match self {
            PinSource::User => "--pin-file",
            PinSource::SecurityOfficer => "--so-pin-file",
            PinSource::NewUser => "--new-pin-file",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PinSource::NewUser => "new user PIN",
            current => current.role().pin_name(),
        }
    }

    /// "set HSM_DEMO_PIN, pass --pin-file FILE, or run in a terminal to be prompted"
    pub fn how_to_supply(self) -> String {
        format!(
            "set {}, pass {} FILE, or run in a terminal to be prompted",
            self.env_var(),
            self.file_flag()
        )
    }
}

/// Reads an existing PIN: `file`, else the role's environment variable, else a
/// terminal prompt when stdin is a terminal.
pub fn read_pin(
    settings: &Settings,
    role: PinSource,
    file: Option<&Path>,
    token_label: &str,
) -> anyhow::Result<AuthPin> {
    if let Some(pin) = from_file_or_env(settings, role, file)? {
        return Ok(pin);
    }
    if settings.interactive {
        return prompt(&format!(
            "{} for token '{token_label}': ",
            capitalised(role)
        ));
    }
    Err(usage(format!(
        "no {} given: {}",
        role.name(),
        role.how_to_supply()
    )))
}

/// Reads a PIN that is about to be set: like [`read_pin`], but a prompt asks twice.
pub fn read_new_pin(
    settings: &Settings,
    role: PinSource,
    file: Option<&Path>,
    what: &str,
) -> anyhow::Result<AuthPin> {
    if let Some(pin) = from_file_or_env(settings, role, file)? {
        return Ok(pin);
    }
    if settings.interactive {
        let first = prompt(&format!("New {} for {what}: ", role.name()))?;
        let again = prompt(&format!("Repeat the new {}: ", role.name()))?;
        if first.expose_secret() != again.expose_secret() {
            return Err(usage(format!(
                "the two {}s differ; nothing was changed",
                role.name()
            )));
        }
        return Ok(first);
    }
    Err(usage(format!(
        "no {} given: {}",
        role.name(),
        role.how_to_supply()
    )))
}

/// Whether a PIN is available without prompting (used to fail early, before any
/// token state changes).
pub fn available(settings: &Settings, role: PinSource, file: Option<&Path>) -> bool {
    file.is_some() || !matches!(settings.env_pin(role), EnvPin::Unset) || settings.interactive
}

fn from_file_or_env(
    settings: &Settings,
    role: PinSource,
    file: Option<&Path>,
) -> anyhow::Result<Option<AuthPin>> {
    if let Some(path) = file {
        // No token takes a PIN this long (ulMaxPinLen is a CK_ULONG, but tokens use a
        // few dozen characters); refusing here avoids sending a file's contents to C_Login.
        const MAX_PIN_FILE: u64 = 4096;
        if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_PIN_FILE) {
            return Err(usage(format!(
                "{} file {} is larger than {MAX_PIN_FILE} bytes: not a PIN",
                role.name(),
                path.display()
            )));
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            usage(format!(
                "cannot read {} file {}: {e}",
                role.name(),
                path.display()
            ))
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            usage(format!(
                "{} file {} is not UTF-8",
                role.name(),
                path.display()
            ))
        })?;
        // One trailing newline is what `echo` and editors add; anything else is the PIN.
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        return non_empty(
            role,
            text,
            &format!("{} {}", role.file_flag(), path.display()),
        )
        .map(Some);
    }
    match settings.env_pin(role) {
        EnvPin::Unset => Ok(None),
        EnvPin::Set(value) => Ok(Some(value.clone())),
        EnvPin::NotUnicode => Err(usage(format!("{} is not valid UTF-8", role.env_var()))),
    }
}

fn non_empty(role: PinSource, text: &str, source: &str) -> anyhow::Result<AuthPin> {
    if text.is_empty() {
        return Err(usage(format!("the {} from {source} is empty", role.name())));
    }
    Ok(locked(AuthPin::from(text)))
}

fn prompt(text: &str) -> anyhow::Result<AuthPin> {
    let value = Zeroizing::new(
        rpassword::prompt_password(text).context("cannot read the PIN from the terminal")?,
    );
    if value.is_empty() {
        return Err(usage("empty PIN entered"));
    }
    Ok(locked(AuthPin::from(value.as_str())))
}

fn capitalised(role: PinSource) -> &'static str {
    match role {
        PinSource::User => "User PIN",
        PinSource::SecurityOfficer => "SO PIN",
        PinSource::NewUser => "New user PIN",
    }
}

/// Every hsm-demo process may hold a PIN or a quorum share: no core dump (RLIMIT_CORE
/// 0, which children inherit) and not dumpable (PR_SET_DUMPABLE 0, which also keeps
/// other processes of the same user from attaching with ptrace). Done before any
/// secret is read; a failure leaves the process as it was (nothing to report to).
pub fn keep_secrets_out_of_core_dumps() {
    use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    let _ = setrlimit(Resource::Core, none);
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
}

/// `pin`, its pages locked against swapping (crate::quorum::locked); secrecy zeroizes it
/// on drop.
fn locked(pin: AuthPin) -> AuthPin {
    use secrecy::ExposeSecret;
    let text = pin.expose_secret();
    crate::quorum::lock(text.as_ptr(), text.len());
    pin
}

/// A PIN from bytes (a recombined quorum secret): UTF-8, never a lossy conversion.
pub fn pin_from_bytes(bytes: &[u8], what: &str) -> Result<AuthPin, crate::error::UsageError> {
    std::str::from_utf8(bytes)
        .map(|text| locked(AuthPin::from(text)))
        .map_err(|_| crate::error::UsageError(format!("{what} is not UTF-8; nothing was sent to the token")))
}
