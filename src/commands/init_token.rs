//! `init-token`: C_InitToken on a free slot and the first user PIN, without softhsm2-util.

use crate::console::outln;
use std::path::PathBuf;

use crate::error::usage;
use crate::commands::pin::{self, PinSource};
use crate::settings::Settings;

use super::open_module;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Label of the new token (must not exist yet)
    #[arg(long)]
    label: String,

    /// File holding the new SO PIN; else HSM_DEMO_SO_PIN, else a prompt
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let label = a.label.as_str();
    if label.is_empty() || label.len() > 32 {
        return Err(usage(format!(
            "token label must be 1 to 32 bytes (PKCS#11 CK_TOKEN_INFO.label), got {}",
            label.len()
        )));
    }
    // CK_TOKEN_INFO.label is blank-padded (PKCS#11 v2.40 §3.2): trailing blanks would
    // be lost, and a token could never be selected by the label given here.
    if label.trim() != label || label.contains('\0') {
        return Err(usage(format!(
            "token label '{label}' starts or ends with blanks (or holds a NUL), which the token's blank padding would change"
        )));
    }
    let (module, _lock) = open_module(settings, super::Use::Change)?;
    let what = format!("token '{label}'");
    let so_pin = pin::read_new_pin(settings, PinSource::SecurityOfficer, a.so_pin_file.as_deref(), &what)?;
    let user_pin = pin::read_new_pin(settings, PinSource::User, settings.pin_file.as_deref(), &what)?;
    let token = module.init_token(label, &so_pin, &user_pin)?;
    outln!(
        "Initialized token '{}' (serial {}) in slot {}",
        token.label,
        token.serial,
        token.slot.id()
    )?;
    outln!("  uri: {}", token.uri().to_uri_string())?;
    Ok(())
}
