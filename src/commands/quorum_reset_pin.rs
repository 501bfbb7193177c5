//! `quorum-reset-pin`: M custodian shares open the SO role, which sets a new user PIN:
//! one a person chooses, or, on a token whose user PIN is under an activation quorum
//! (the token records it), a fresh secret dealt to a new activation set
//! (ceremony::reset) that nobody chooses or sees.

use std::path::PathBuf;

use crate::ceremony::{self, redeal, SecretShape};
use crate::commands::pin::{self, PinSource};
use crate::console::{self, outln};
use crate::error::usage;
use crate::quorum::{self, Quorum};
use crate::settings::Settings;

use super::shares;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A custodian's share file; give it once per custodian present
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,

    /// File holding the new user PIN; else HSM_DEMO_NEW_PIN, else a prompt (twice).
    /// Refused on a token whose user PIN is under an activation quorum
    #[arg(long, value_name = "FILE")]
    new_pin_file: Option<PathBuf>,

    /// On a token under an activation quorum: the new activation set's M/N (required
    /// there; the user PIN becomes a fresh token-RNG secret split M-of-N)
    #[arg(long, value_name = "M/N")]
    activation_quorum: Option<Quorum>,

    /// On a token under an activation quorum: where the new activation shares and the
    /// signed transcript go [default: ./reset-user-<UTC time>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// On a token under an activation quorum: the label of the key that signs the
    /// transcript
    #[arg(long, value_name = "LABEL", default_value = "root-ca-key")]
    sign_with: String,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let (secret, binding) = shares::combine_current(settings, &a.shares, quorum::Purpose::SoPin)?;
    let (module, token, lock) = shares::token_of(settings, &binding, super::Use::Change)?;
    module.require_functions(
        &token.label,
        "reset a user PIN",
        &[(cryptoki::context::Function::InitPIN, "C_InitPIN")],
    )?;
    let so_pin = pin::pin_from_bytes(&secret, "the SO PIN recombined from the shares")?;
    drop(secret);
    // The read-only session is closed at once: the SO cannot log in while one is open.
    let recorded = module.public_session(&token)?.activation_quorum()?;
    if let Some(old_set) = recorded {
        let Some(q) = a.activation_quorum else {
            return Err(usage(format!(
                "token '{}' keeps its user PIN under an activation quorum (share set {old_set}): it never takes a PIN a person chose; give --activation-quorum M/N to deal a new activation set, or re-deal with the current shares: hsm-demo quorum-redeal --role user",
                token.label
            )));
        };
        if a.new_pin_file.is_some() {
            return Err(usage("--new-pin-file: this token's user PIN is under an activation quorum; the new PIN is dealt, not chosen"));
        }
        let out = ceremony::out_dir(a.out.as_deref(), "reset-user")?;
        let (first, _, _) = quorum::check_file(&a.shares[0])?;
        let plan = ceremony::reset::Plan {
            old_set: old_set.clone(),
            so_set: first.set_id(),
            so_files: a.shares.clone(),
            new: (q, SecretShape::for_token(module.max_pin_len(&token)?)?),
            binding,
            sign_with: a.sign_with.clone(),
        };
        let reserved = ceremony::reserve_marked(&out, &redeal::marker(quorum::Purpose::Activation, &old_set))?;
        let mut printer = console::Printer::default();
        let mut print = |line: &str| printer.line(line);
        let new_set = ceremony::reset::run(
            (module, &token, lock),
            &so_pin,
            &plan,
            settings.provider.clone(),
            settings.data_dir.as_deref(),
            reserved,
            &mut print,
        )?;
        printer.finish()?;
        outln!(
            "Quorum of {} SO share(s) reset the user PIN of token '{}' (serial {}) to a dealt secret: activation share set {old_set} retired, share set {new_set} ({q}) in force, in {}",
            a.shares.len(),
            token.label,
            token.serial,
            out.display()
        )?;
        return Ok(());
    }
    if a.activation_quorum.is_some() || a.out.is_some() {
        return Err(usage(format!(
            "token '{}' records no activation quorum; --activation-quorum and --out apply only to one that does",
            token.label
        )));
    }
    let new_pin = pin::read_new_pin(
        settings,
        PinSource::NewUser,
        a.new_pin_file.as_deref(),
        &format!("token '{}'", token.label),
    )?;
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
