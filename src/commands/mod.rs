//! One file per subcommand; this file dispatches and holds the steps they share.

mod generate_key;
mod init_token;
mod list_keys;
mod list_slots;

use anyhow::Context as _;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::usage;
use crate::pin::{self, PinRole};
use crate::token::{Module, ModuleChoice, Pkcs11Uri, TokenRef, TokenSelector, UserSession};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::ListSlots { json } => list_slots::run(g, json),
        Command::InitToken { label, so_pin_file } => init_token::run(g, &label, so_pin_file.as_deref()),
        Command::GenerateKey { label, id } => generate_key::run(g, &label, id.as_deref()),
        Command::ListKeys { json } => list_keys::run(g, json),
    }
}

/// Loads the module the user chose (or the embedded default).
pub fn open_module(g: &GlobalArgs) -> anyhow::Result<Module> {
    Module::open(&ModuleChoice { path: g.module.clone() })
}

/// The token selector from --token (label or URI) and --serial, merged with the
/// token attributes of an extra URI (e.g. a key URI from --key).
pub fn token_selector(g: &GlobalArgs, extra: Option<&Pkcs11Uri>) -> anyhow::Result<TokenSelector> {
    let mut sel = TokenSelector { serial: g.serial.clone(), ..Default::default() };
    if let Some(t) = &g.token {
        if t.starts_with("pkcs11:") {
            sel.uri = Some(Pkcs11Uri::parse(t).map_err(|e| usage(e.to_string()))?);
        } else {
            sel.label = Some(t.clone());
        }
    }
    if let Some(extra) = extra {
        if extra.token.is_some() || extra.serial.is_some() || extra.model.is_some() || extra.manufacturer.is_some() {
            if sel.uri.is_some() {
                return Err(usage("give the token either in --token or in the key URI, not both"));
            }
            sel.uri = Some(extra.clone());
        }
    }
    Ok(sel)
}

/// Module + selected token.
pub fn open_token(g: &GlobalArgs, extra: Option<&Pkcs11Uri>) -> anyhow::Result<(Module, TokenRef)> {
    let selector = token_selector(g, extra)?;
    let module = open_module(g)?;
    let token = module.select_token(&selector)?;
    Ok((module, token))
}

/// Module + selected token + a session logged in as the user (PIN read once, tried once).
pub fn login_user(g: &GlobalArgs, extra: Option<&Pkcs11Uri>) -> anyhow::Result<(Module, UserSession)> {
    let (module, token) = open_token(g, extra)?;
    let pin = pin::read_pin(PinRole::User, g.pin_file.as_deref(), &token.label)?;
    let session = module.login_user(&token, &pin)?;
    Ok((module, session))
}

/// Parses a hex string given on the command line.
pub fn parse_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 == 1 {
        return Err(usage(format!("{what}: odd number of hex digits ({})", text.len())));
    }
    hex::decode(text).map_err(|e| usage(format!("{what}: not hex ({e})")))
}

/// Prints JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("encode JSON")?;
    println!("{text}");
    Ok(())
}
