//! One file per subcommand, each with its clap `Args` and a `run` that is glue: read
//! the arguments, call the layers, print. This file dispatches and holds the steps
//! several commands share (choosing the token and the key, logging in).

mod args;
pub mod bench;
mod bench_processes;
pub mod ca_init;
pub mod completions;
pub mod crl;
pub mod csr;
pub mod delete_key;
pub mod export_pubkey;
pub mod generate_key;
pub mod init_token;
pub mod issue;
mod io;
pub mod key_ceremony;
pub mod list_issued;
pub mod list_keys;
pub mod list_slots;
pub mod manpage;
mod openssl_env;
pub mod quorum_reset_pin;
pub mod revoke;
pub mod sign;
pub mod verify;
pub mod verify_ceremony;

use crate::console::outln;
use anyhow::Context as _;

use crate::cli::{self, Command};
use crate::error::{usage, SetupError};
use crate::hsm::Hsm;
use crate::lock::{self, Access, StoreLock};
use crate::pin::{self, PinRole};
use crate::quorum;
use crate::settings::Settings;
use crate::token::{KeySelector, Module, Pkcs11Uri, TokenRef, TokenSelector};

pub use args::{DataArgs, FormatArgs, KeyArgs};

pub fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    match command {
        Command::ListSlots(a) => list_slots::run(settings, a),
        Command::InitToken(a) => init_token::run(settings, a),
        Command::GenerateKey(a) => generate_key::run(settings, a),
        Command::ListKeys(a) => list_keys::run(settings, a),
        Command::DeleteKey(a) => delete_key::run(settings, a),
        Command::Sign(a) => sign::run(settings, a),
        Command::Verify(a) => verify::run(settings, a),
        Command::ExportPubkey(a) => export_pubkey::run(settings, a),
        Command::KeyCeremony(a) => key_ceremony::run(settings, a),
        Command::QuorumResetPin(a) => quorum_reset_pin::run(settings, a),
        Command::VerifyCeremony(a) => verify_ceremony::run(a),
        Command::Bench(a) => bench::run(settings, a),
        Command::Csr(a) => csr::run(settings, a),
        Command::CaInit(a) => ca_init::run(settings, a),
        Command::Issue(a) => issue::run(settings, a),
        Command::Revoke(a) => revoke::run(settings, a),
        Command::Crl(a) => crl::run(settings, a),
        Command::ListIssued(a) => list_issued::run(a),
        Command::OpensslEnv => openssl_env::run(settings),
        Command::Completions(a) => completions::run(cli::definition(), a),
        Command::Manpage(a) => manpage::run(cli::definition(), a),
    }
}

/// How a command uses the token store, which decides its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Lists or reads public objects, no login: a shared lock.
    Read,
    /// A user login to use keys: a shared lock, made exclusive on a module whose
    /// login writes its store.
    Login,
    /// Creates objects or changes PINs: an exclusive lock.
    Change,
}

/// Locks the token store, then loads the module the settings name (or the embedded
/// default). The lock is held as long as the returned value lives.
pub fn open_module(settings: &Settings, how: Use) -> anyhow::Result<(Module, StoreLock)> {
    let spec = settings.module().map_err(SetupError)?;
    let path = lock::lock_path(&settings.lock_dir, &spec.path, &settings.module_environment());
    let access = match how {
        Use::Read | Use::Login => Access::Shared,
        Use::Change => Access::Exclusive,
    };
    let mut held = lock::acquire(&path, access)?;
    let module = Module::open(&spec)?;
    if how == Use::Login && module.writes_on_login() {
        held.upgrade_for_login()?;
    }
    Ok((module, held))
}

/// The token selector from --token (label or URI) and --serial, merged with the
/// token attributes of an extra URI (e.g. a key URI from --key).
pub fn token_selector(
    settings: &Settings,
    extra: Option<&Pkcs11Uri>,
) -> anyhow::Result<TokenSelector> {
    let mut sel = TokenSelector {
        serial: settings.serial.clone(),
        ..Default::default()
    };
    if let Some(t) = &settings.token {
        if t.starts_with("pkcs11:") {
            sel.uri = Some(Pkcs11Uri::parse(t).map_err(|e| usage(e.to_string()))?);
        } else {
            sel.label = Some(t.clone());
        }
    }
    if let Some(extra) = extra.filter(|u| u.names_token()) {
        if sel.uri.is_some() {
            return Err(usage(
                "give the token either in --token or in the key URI, not both",
            ));
        }
        sel.uri = Some(extra.clone());
    }
    Ok(sel)
}

/// Lock, module and the selected token.
pub fn open_token(
    settings: &Settings,
    extra: Option<&Pkcs11Uri>,
    how: Use,
) -> anyhow::Result<(Module, TokenRef, StoreLock)> {
    let selector = token_selector(settings, extra)?;
    let (module, lock) = open_module(settings, how)?;
    let token = module.select_token(&selector)?;
    Ok((module, token, lock))
}

/// The user's PIN for `token`: recombined from `--pin-share` files, else from a file,
/// the environment or a prompt. Shares that are too few, duplicated, altered, of the
/// SO quorum, or of another ceremony or token are refused before any login.
pub fn user_pin(settings: &Settings, token: &TokenRef) -> anyhow::Result<cryptoki::types::AuthPin> {
    if settings.pin_shares.is_empty() {
        return pin::read_pin(settings, PinRole::User, settings.pin_file.as_deref(), &token.label);
    }
    let (secret, binding) = quorum::combine(&settings.pin_shares, quorum::Purpose::Activation)?;
    if binding.token_serial != token.serial || binding.token_label != token.label {
        return Err(usage(format!(
            "these activation shares belong to token '{}' (serial {}), not to '{}' (serial {}); nothing was sent to the token",
            binding.token_label, binding.token_serial, token.label, token.serial
        )));
    }
    Ok(cryptoki::types::AuthPin::from(String::from_utf8_lossy(&secret).as_ref()))
}

/// Logs the user in on `token` of `module`: the command's [`Hsm`] context, which
/// keeps `lock` until it is dropped.
pub fn login_on(
    settings: &Settings,
    module: Module,
    token: &TokenRef,
    lock: StoreLock,
) -> anyhow::Result<Hsm> {
    let pin = user_pin(settings, token)?;
    Ok(Hsm::login(module, token, pin, settings.provider.clone(), lock)?)
}

/// Module, token, lock and user login in one step.
pub fn login(settings: &Settings, extra: Option<&Pkcs11Uri>, how: Use) -> anyhow::Result<Hsm> {
    let (module, token, lock) = open_token(settings, extra, how)?;
    login_on(settings, module, &token, lock)
}

impl KeyArgs {
    /// The key named by a URI (a CA directory's), as `--key URI` would.
    pub fn uri(uri: &str) -> KeyArgs {
        KeyArgs { label: None, key: Some(uri.to_string()) }
    }

    /// A user login on the token this key lives on (the URI's token, else --token or
    /// the only one), and the key's selector.
    pub fn login(&self, settings: &Settings) -> anyhow::Result<(Hsm, KeySelector)> {
        let (selector, uri) = self.selector()?;
        Ok((login(settings, uri.as_ref(), Use::Login)?, selector))
    }

    /// The key named by --label or --key URI, and the URI (whose token attributes,
    /// if any, choose the token).
    pub fn selector(&self) -> anyhow::Result<(KeySelector, Option<Pkcs11Uri>)> {
        match (&self.label, &self.key) {
            (Some(label), None) => {
                if label.is_empty() {
                    return Err(usage("--label must not be empty"));
                }
                let selector = KeySelector {
                    label: Some(label.clone()),
                    id: None,
                };
                Ok((selector, None))
            }
            (None, Some(uri)) => {
                let parsed = Pkcs11Uri::parse(uri).map_err(|e| usage(e.to_string()))?;
                if parsed.object.is_none() && parsed.id.is_none() {
                    return Err(usage(format!(
                        "--key {uri} names no key: add object=LABEL or id=%.."
                    )));
                }
                if parsed
                    .object_type
                    .as_deref()
                    .is_some_and(|t| t != "private" && t != "public")
                {
                    return Err(usage(format!(
                        "--key {uri} is not a key URI (type must be private or public)"
                    )));
                }
                let selector = KeySelector {
                    label: parsed.object.clone(),
                    id: parsed.id.clone(),
                };
                Ok((selector, Some(parsed)))
            }
            _ => Err(usage("give exactly one of --label LABEL or --key URI")),
        }
    }
}

/// Parses a hex string given on the command line.
pub fn parse_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 == 1 {
        return Err(usage(format!(
            "{what}: odd number of hex digits ({})",
            text.len()
        )));
    }
    hex::decode(text).map_err(|e| usage(format!("{what}: not hex ({e})")))
}

/// Prints JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("encode JSON")?;
    outln!("{text}")?;
    Ok(())
}
