//! Custodian share files as commands take them: a retired set refused by name, the
//! shares recombined, and the token they belong to selected.

use std::path::PathBuf;

use crate::error::usage;
use crate::quorum::{self, retired, Binding, Locked, Purpose};
use crate::settings::Settings;
use crate::token::{Module, TokenRef, TokenSelector};

use super::{open_module, token_selector, Use};

/// The secret of `paths` (shares of `purpose`), after a share of a set a re-deal
/// retired on this host is refused by name: nothing reaches the token.
pub fn combine_current(settings: &Settings, paths: &[PathBuf], purpose: Purpose) -> anyhow::Result<(Locked, Binding)> {
    retired::refuse_retired(settings.data_dir.as_deref(), paths)?;
    Ok(quorum::combine(paths, purpose)?)
}

/// The token the shares name (an explicit --token/--serial must agree with it), its
/// module and the store lock for `how`.
pub fn token_of(settings: &Settings, binding: &Binding, how: Use) -> anyhow::Result<(Module, TokenRef, crate::lock::StoreLock)> {
    let mut selector = token_selector(settings, None)?;
    if selector.label.is_none() && selector.serial.is_none() && selector.uri.is_none() {
        selector = TokenSelector {
            serial: Some(binding.token_serial.clone()),
            ..Default::default()
        };
    }
    let (module, lock) = open_module(settings, how)?;
    let token = module.select_token(&selector)?;
    if token.serial != binding.token_serial {
        return Err(usage(format!(
            "these shares belong to token serial {} ('{}'), not to '{}' (serial {})",
            binding.token_serial, binding.token_label, token.label, token.serial
        )));
    }
    Ok((module, token, lock))
}
