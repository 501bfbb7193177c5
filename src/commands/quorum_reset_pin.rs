//! `quorum-reset-pin`: M custodian shares open the SO role, which sets a new user PIN.

use crate::console::outln;
use std::path::PathBuf;


use crate::error::usage;
use crate::commands::pin::{self, PinSource};
use crate::quorum;
use crate::settings::Settings;
use crate::token::TokenSelector;

use super::{open_module, token_selector};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A custodian's share file; give it once per custodian present
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,

    /// File holding the new user PIN; else HSM_DEMO_NEW_PIN, else a prompt (twice)
    #[arg(long, value_name = "FILE")]
    new_pin_file: Option<PathBuf>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let (secret, binding) = quorum::combine(&a.shares, quorum::Purpose::SoPin)?;
    // The shares name their token; an explicit --token/--serial must agree with it.
    let mut selector = token_selector(settings, None)?;
    if selector.label.is_none() && selector.serial.is_none() && selector.uri.is_none() {
        selector = TokenSelector {
            serial: Some(binding.token_serial.clone()),
            ..Default::default()
        };
    }
    let (module, _lock) = open_module(settings, super::Use::Change)?;
    let token = module.select_token(&selector)?;
    if token.serial != binding.token_serial {
        return Err(usage(format!(
            "these shares belong to token serial {} ('{}'), not to '{}' (serial {})",
            binding.token_serial, binding.token_label, token.label, token.serial
        )));
    }
    module.require_functions(
        &token.label,
        "reset a user PIN",
        &[(cryptoki::context::Function::InitPIN, "C_InitPIN")],
    )?;
    let new_pin = pin::read_new_pin(
        settings,
        PinSource::NewUser,
        a.new_pin_file.as_deref(),
        &format!("token '{}'", token.label),
    )?;
    let so_pin = crate::commands::pin::pin_from_bytes(&secret, "the SO PIN recombined from the shares")?;
    let guard = module.store_guard();
    crate::token::store_guard::guarded(guard.as_ref(), &token.serial, "user PIN reset", || -> anyhow::Result<()> {
        let so = module.login_so(&token, &so_pin)?;
        so.init_user_pin(&new_pin)?;
        Ok(so.logout()?)
    })??;
    outln!(
        "Quorum of {} share(s) opened the SO role of token '{}' (serial {}); the user PIN was reset",
        a.shares.len(),
        token.label,
        token.serial
    )?;
    Ok(())
}
