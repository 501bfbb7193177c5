//! `quorum-reset-pin`: M custodian shares open the SO role, which sets a new user PIN.

use crate::console::outln;
use std::path::PathBuf;


use crate::commands::pin::{self, PinSource};
use crate::quorum;
use crate::settings::Settings;

use super::shares;

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
    let (secret, binding) = shares::combine_current(settings, &a.shares, quorum::Purpose::SoPin)?;
    let (module, token, _lock) = shares::token_of(settings, &binding, super::Use::Change)?;
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
