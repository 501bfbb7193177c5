//! PIN sources: an environment variable, a file, or a terminal prompt; never argv.
//!
//! PINs are held as `secrecy::SecretString` (cryptoki's `AuthPin`): zeroized on drop
//! and redacted by `Debug`, so they cannot reach a log or an error message.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use cryptoki::types::AuthPin;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::error::usage;

/// Whose PIN is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinRole {
    /// CKU_USER: signs, generates keys.
    User,
    /// CKU_SO: initialises the user PIN.
    SecurityOfficer,
    /// A new user PIN being set by the SO (quorum-reset-pin).
    NewUser,
}

impl PinRole {
    pub fn env_var(self) -> &'static str {
        match self {
            PinRole::User => "HSM_DEMO_PIN",
            PinRole::SecurityOfficer => "HSM_DEMO_SO_PIN",
            PinRole::NewUser => "HSM_DEMO_NEW_PIN",
        }
    }

    pub fn file_flag(self) -> &'static str {
        match self {
            PinRole::User => "--pin-file",
            PinRole::SecurityOfficer => "--so-pin-file",
            PinRole::NewUser => "--new-pin-file",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PinRole::User => "user PIN",
            PinRole::SecurityOfficer => "SO PIN",
            PinRole::NewUser => "new user PIN",
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
pub fn read_pin(role: PinRole, file: Option<&Path>, token_label: &str) -> anyhow::Result<AuthPin> {
    if let Some(pin) = from_file_or_env(role, file)? {
        return Ok(pin);
    }
    if std::io::stdin().is_terminal() {
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
pub fn read_new_pin(role: PinRole, file: Option<&Path>, what: &str) -> anyhow::Result<AuthPin> {
    if let Some(pin) = from_file_or_env(role, file)? {
        return Ok(pin);
    }
    if std::io::stdin().is_terminal() {
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
        "no new {} given: {}",
        role.name(),
        role.how_to_supply()
    )))
}

/// Whether a PIN is available without prompting (used to fail early, before any
/// token state changes).
pub fn available(role: PinRole, file: Option<&Path>) -> bool {
    file.is_some()
        || std::env::var_os(role.env_var()).is_some_and(|v| !v.is_empty())
        || std::io::stdin().is_terminal()
}

fn from_file_or_env(role: PinRole, file: Option<&Path>) -> anyhow::Result<Option<AuthPin>> {
    if let Some(path) = file {
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
    match std::env::var(role.env_var()) {
        Ok(value) => {
            let value = Zeroizing::new(value);
            if value.is_empty() {
                return Ok(None);
            }
            non_empty(role, &value, role.env_var()).map(Some)
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(usage(format!("{} is not valid UTF-8", role.env_var())))
        }
    }
}

fn non_empty(role: PinRole, text: &str, source: &str) -> anyhow::Result<AuthPin> {
    if text.is_empty() {
        return Err(usage(format!("the {} from {source} is empty", role.name())));
    }
    Ok(AuthPin::from(text))
}

fn prompt(text: &str) -> anyhow::Result<AuthPin> {
    let value = Zeroizing::new(
        rpassword::prompt_password(text).context("cannot read the PIN from the terminal")?,
    );
    if value.is_empty() {
        return Err(usage("empty PIN entered"));
    }
    Ok(AuthPin::from(value.as_str()))
}

fn capitalised(role: PinRole) -> &'static str {
    match role {
        PinRole::User => "User PIN",
        PinRole::SecurityOfficer => "SO PIN",
        PinRole::NewUser => "New user PIN",
    }
}
