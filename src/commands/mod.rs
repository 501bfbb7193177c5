//! One file per subcommand; this file dispatches and holds the steps they share.

mod bench;
mod export_pubkey;
mod generate_key;
mod init_token;
mod io;
mod key_ceremony;
mod list_keys;
mod list_slots;
mod openssl_env;
mod quorum_reset_pin;
mod sign;
mod verify;

use anyhow::Context as _;
use cryptoki::types::AuthPin;
use openssl::pkey::{PKey, Private, Public};

use crate::bridge::{self, Provider};
use crate::cli::{Cli, Command, GlobalArgs, KeyArgs};
use crate::error::usage;
use crate::pin::{self, PinRole};
use crate::token::{
    KeyInfo, KeySelector, Module, ModuleChoice, Pkcs11Uri, TokenError, TokenRef, TokenSelector,
    UserSession,
};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::ListSlots { json } => list_slots::run(g, json),
        Command::InitToken { label, so_pin_file } => {
            init_token::run(g, &label, so_pin_file.as_deref())
        }
        Command::GenerateKey { label, id } => generate_key::run(g, &label, id.as_deref()),
        Command::ListKeys { json } => list_keys::run(g, json),
        Command::Sign {
            key,
            data,
            format,
            out,
        } => sign::run(g, &key, &data, format, out.as_deref()),
        Command::Verify {
            label,
            key,
            pubkey,
            cert,
            data,
            sig,
            sig_file,
        } => verify::run(
            g,
            &verify::Verifier {
                label,
                key,
                pubkey,
                cert,
            },
            &data,
            sig.as_deref(),
            sig_file.as_deref(),
        ),
        Command::ExportPubkey { key, out } => export_pubkey::run(g, &key, out.as_deref()),
        Command::OpensslEnv => openssl_env::run(g),
        Command::KeyCeremony {
            label,
            config,
            out,
            quorum,
            no_quorum,
            days,
            so_pin_file,
        } => key_ceremony::run(
            g,
            key_ceremony::Args {
                label,
                config,
                out,
                quorum: (!no_quorum).then_some(quorum),
                days,
                so_pin_file,
            },
        ),
        Command::Bench {
            key,
            count,
            threads,
            json,
        } => bench::run(g, &key, count, threads, json),
        Command::SetSoPin => quorum_reset_pin::set_so_pin(g),
        Command::QuorumResetPin {
            shares,
            new_pin_file,
        } => quorum_reset_pin::run(g, &shares, new_pin_file.as_deref()),
    }
}

/// Loads the module the user chose (or the embedded default).
pub fn open_module(g: &GlobalArgs) -> anyhow::Result<Module> {
    Module::open(&ModuleChoice {
        path: g.module.clone(),
    })
}

/// The token selector from --token (label or URI) and --serial, merged with the
/// token attributes of an extra URI (e.g. a key URI from --key).
pub fn token_selector(g: &GlobalArgs, extra: Option<&Pkcs11Uri>) -> anyhow::Result<TokenSelector> {
    let mut sel = TokenSelector {
        serial: g.serial.clone(),
        ..Default::default()
    };
    if let Some(t) = &g.token {
        if t.starts_with("pkcs11:") {
            sel.uri = Some(Pkcs11Uri::parse(t).map_err(|e| usage(e.to_string()))?);
        } else {
            sel.label = Some(t.clone());
        }
    }
    if let Some(extra) = extra {
        if extra.token.is_some()
            || extra.serial.is_some()
            || extra.model.is_some()
            || extra.manufacturer.is_some()
        {
            if sel.uri.is_some() {
                return Err(usage(
                    "give the token either in --token or in the key URI, not both",
                ));
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
pub fn login_user(
    g: &GlobalArgs,
    extra: Option<&Pkcs11Uri>,
) -> anyhow::Result<(Module, UserSession)> {
    let (module, session, _pin) = login_user_keep_pin(g, extra)?;
    Ok((module, session))
}

/// Like [`login_user`], keeping the PIN for the provider (which logs in on its own).
pub fn login_user_keep_pin(
    g: &GlobalArgs,
    extra: Option<&Pkcs11Uri>,
) -> anyhow::Result<(Module, UserSession, AuthPin)> {
    let (module, token) = open_token(g, extra)?;
    let pin = pin::read_pin(PinRole::User, g.pin_file.as_deref(), &token.label)?;
    let session = module.login_user(&token, &pin)?;
    Ok((module, session, pin))
}

/// The key named by --label or --key URI, and the URI's token part, if any.
pub fn key_selector(
    label: Option<&str>,
    key: Option<&str>,
) -> anyhow::Result<(KeySelector, Option<Pkcs11Uri>)> {
    match (label, key) {
        (Some(label), None) => {
            if label.is_empty() {
                return Err(usage("--label must not be empty"));
            }
            Ok((
                KeySelector {
                    label: Some(label.to_string()),
                    id: None,
                },
                None,
            ))
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
            Ok((
                KeySelector {
                    label: parsed.object.clone(),
                    id: parsed.id.clone(),
                },
                Some(parsed),
            ))
        }
        _ => Err(usage("give exactly one of --label LABEL or --key URI")),
    }
}

/// A token-resident signing key as OpenSSL sees it, and the token state behind it.
pub struct KeyHandle {
    /// The private key through the pkcs11-provider: every operation runs in the token.
    pub private: PKey<Private>,
    /// The public key from CKA_EC_POINT, in OpenSSL's default provider.
    pub public: PKey<Public>,
    /// Held so the login outlives the provider key (closing the last session of the
    /// application would log it out).
    _session: UserSession,
    _module: Module,
}

/// Finds the one private key the arguments name (cryptoki: refuses none, several, or
/// a key that cannot sign), then loads it into OpenSSL through the provider by URI.
pub fn load_signing_key(g: &GlobalArgs, key: &KeyArgs) -> anyhow::Result<KeyHandle> {
    let (selector, uri) = key_selector(key.label.as_deref(), key.key.as_deref())?;
    let (module, session, pin) = login_user_keep_pin(g, uri.as_ref())?;
    let info = session.find_private_key(&selector)?;
    load_key_into_openssl(module, session, pin, info)
}

/// The provider half of [`load_signing_key`], for a key the caller already found.
pub fn load_key_into_openssl(
    module: Module,
    session: UserSession,
    pin: AuthPin,
    info: KeyInfo,
) -> anyhow::Result<KeyHandle> {
    let (public, _point) = signing_public_key(&session, &info)?;
    let private = provider_key(&module, &info, &pin)?;
    Ok(KeyHandle {
        private,
        public,
        _session: session,
        _module: module,
    })
}

/// Refuses a key hsm-demo cannot sign with, and returns its public key (from the
/// token's public key object) and EC point.
pub fn signing_public_key(
    session: &UserSession,
    info: &KeyInfo,
) -> anyhow::Result<(PKey<Public>, Vec<u8>)> {
    if info.can_sign != Some(true) {
        return Err(TokenError::KeyCannotSign {
            label: info.label.clone(),
            why: "CKA_SIGN is false".into(),
        }
        .into());
    }
    if info.key_type != "EC" || info.curve != Some("P-256") {
        return Err(TokenError::KeyCannotSign {
            label: info.label.clone(),
            why: format!(
                "it is {} {}, hsm-demo signs with ECDSA P-256",
                info.key_type,
                info.curve.unwrap_or("")
            ),
        }
        .into());
    }
    let public_handle = session.public_key_for(info)?;
    let point = session.ec_point(public_handle)?;
    Ok((bridge::p256_public_key(&point)?, point))
}

/// Loads the pkcs11-provider for `module` and the key by its URI through OSSL_STORE.
pub fn provider_key(
    module: &Module,
    info: &KeyInfo,
    pin: &AuthPin,
) -> anyhow::Result<PKey<Private>> {
    let provider = Provider::load(module.path())?;
    Ok(provider.private_key(&info.uri, pin)?)
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
    println!("{text}");
    Ok(())
}
