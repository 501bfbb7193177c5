//! `quorum-reset-pin`: M custodian shares open the SO role, which sets a new user PIN.

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;

use crate::cli::GlobalArgs;
use crate::error::usage;
use crate::pin::{self, PinRole};
use crate::quorum::{self, QuorumError};
use crate::token::TokenSelector;

use super::{open_module, token_selector};

pub fn run(g: &GlobalArgs, shares: &[PathBuf], new_pin_file: Option<&Path>) -> anyhow::Result<()> {
    let (secret, binding) = quorum::combine(shares).map_err(|e| match e {
        QuorumError::WrongSecret => anyhow::Error::from(e),
        other => usage(other.to_string()),
    })?;
    // The shares name their token; an explicit --token/--serial must agree with it.
    let mut selector = token_selector(g, None)?;
    if selector.label.is_none() && selector.serial.is_none() && selector.uri.is_none() {
        selector = TokenSelector {
            serial: Some(binding.token_serial.clone()),
            ..Default::default()
        };
    }
    let module = open_module(g)?;
    let token = module.select_token(&selector)?;
    if token.serial != binding.token_serial {
        return Err(usage(format!(
            "these shares belong to token serial {} ('{}'), not to '{}' (serial {})",
            binding.token_serial, binding.token_label, token.label, token.serial
        )));
    }
    let new_pin = pin::read_new_pin(
        PinRole::NewUser,
        new_pin_file,
        &format!("token '{}'", token.label),
    )?;
    let so_pin = AuthPin::from(String::from_utf8_lossy(&secret).as_ref());
    let so = module.login_so(&token, &so_pin)?;
    so.init_user_pin(&new_pin)?;
    so.logout()?;
    println!(
        "Quorum of {} share(s) opened the SO role of token '{}' (serial {}); the user PIN was reset",
        shares.len(),
        token.label,
        token.serial
    );
    Ok(())
}

/// `__set-so-pin` (hidden): the ceremony's SO step in a process of its own. Exit 5
/// means the PIN was changed but the proof login with the new one failed.
pub fn set_so_pin(g: &GlobalArgs) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut lines = std::io::stdin().lock().lines();
    let mut next = || -> anyhow::Result<AuthPin> {
        let line = zeroize::Zeroizing::new(
            lines
                .next()
                .ok_or_else(|| usage("__set-so-pin: expected two PIN lines on stdin"))??,
        );
        Ok(AuthPin::from(line.as_str()))
    };
    let (old, new) = (next()?, next()?);
    let (module, token) = super::open_token(g, None)?;
    let so = module.login_so(&token, &old)?;
    so.set_pin(&old, &new, "SO PIN")?;
    so.logout()?;
    drop(so);
    let proof = module.login_so(&token, &new).and_then(|s| s.logout());
    if let Err(e) = proof {
        eprintln!("hsm-demo: the SO PIN was changed, but logging in with the new one failed: {e}");
        std::process::exit(5);
    }
    Ok(())
}
