//! `quorum-reset-pin` on a token whose user PIN is under an activation quorum (the
//! token says so: token::marker): the SO, opened by its quorum, never takes a PIN a
//! person chose. A fresh secret from the token RNG becomes the user PIN (C_InitPIN),
//! split into a new activation set written ahead as in every quorum step; the user
//! role is then opened with it, and the root key signs the transcript.

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;

use crate::bridge::BridgeError;
use crate::hsm::Hsm;
use crate::lock::StoreLock;
use crate::output::OutputDir;
use crate::quorum::{Binding, Purpose, Quorum};
use crate::token::{KeySelector, Module, TokenRef};

use super::redeal::{failed, opening, record_new_set, retire, SIGNER_PEM};
use super::so_step::Outcome;
use super::steps::{self, SecretShape};
use super::transcript::{utc_now, Transcript};

/// What the reset replaces and with what.
pub struct Plan {
    /// The activation set the token records (its shares are lost, or out of reach).
    pub old_set: String,
    /// The SO share set that opened the SO role, and its files.
    pub so_set: String,
    pub so_files: Vec<PathBuf>,
    pub new: (Quorum, SecretShape),
    pub binding: Binding,
    /// The label of the key that signs the transcript.
    pub sign_with: String,
}

/// Runs the reset; the new set's id.
pub fn run(
    (module, token, lock): (Module, &TokenRef, StoreLock),
    so_pin: &AuthPin,
    plan: &Plan,
    provider: PathBuf,
    data_dir: Option<&Path>,
    mut out: OutputDir,
    print: &mut dyn FnMut(&str),
) -> anyhow::Result<String> {
    let mut t = Transcript::new(print);
    opening(
        &mut t,
        ("hsm-demo quorum-reset-pin: the activation quorum re-dealt by the SO", token),
        &format!(
            "[Re-deal 1] SO share set {} opened the SO role; the token records activation share set {}",
            plan.so_set, plan.old_set
        ),
        (&plan.binding, &plan.old_set),
        ("SO share file", &plan.so_files),
    )?;
    let so = module.login_so(token, so_pin)?;
    let guard = module.store_guard();
    let apply = |new: &[u8], set: &str| {
        if let Err(e) = so.mark_activation_quorum(set) {
            return Outcome::Unchanged(e.to_string());
        }
        let Ok(pin) = std::str::from_utf8(new).map(AuthPin::from) else {
            return Outcome::Unchanged("the new user PIN is not UTF-8".into());
        };
        crate::token::store_guard::guarded(guard.as_ref(), &token.serial, "user PIN reset", || match so.init_user_pin(&pin) {
            Ok(()) => Outcome::Changed,
            Err(e) if e.pin_refused() => Outcome::Unchanged(e.to_string()),
            Err(e) => Outcome::ChangedOrUnknown(e.to_string()),
        })
        .unwrap_or_else(|e| Outcome::Unchanged(e.to_string()))
    };
    let made = steps::make_quorum(&so, Purpose::Activation, plan.new, plan.binding.clone(), &mut out, apply)
        .map_err(|f| failed(f, Purpose::Activation, &plan.old_set, &out))?;
    let new_set = record_new_set(&made, &mut t);
    so.logout()?;
    drop(so);
    // The proof: the user role opens with the new set's PIN; the root key then signs.
    let keep = |e: anyhow::Error| {
        e.context(format!(
            "the user PIN WAS reset: the new activation shares in {} are its only copy (the directory stays marked {})",
            out.path().display(),
            super::INCOMPLETE
        ))
    };
    let pin = std::str::from_utf8(&made.new_pin)
        .map(AuthPin::from)
        .map_err(|_| keep(anyhow::anyhow!("the new user PIN is not UTF-8")))?;
    {
        use secrecy::ExposeSecret as _;
        crate::quorum::lock(pin.expose_secret().as_ptr(), pin.expose_secret().len());
    }
    let hsm = Hsm::login(module, token, pin, provider, lock).map_err(|e| keep(e.into()))?;
    t.step(&format!(
        "[Re-deal 3] Share set {} retired: the user role opened with the new set's PIN (C_InitPIN replaced the old one)",
        plan.old_set
    ));
    retire(data_dir, &plan.old_set, &new_set, utc_now(), &out);
    let selector = KeySelector {
        label: Some(plan.sign_with.clone()),
        id: None,
    };
    let key = hsm.signing_key(&selector).map_err(keep)?;
    let pem = key.public().public_key_to_pem().map_err(BridgeError::openssl("encode the public key"))?;
    out.write(SIGNER_PEM, &pem, 0o644)?;
    super::seal(&key, &out, &format!("the key '{}'", plan.sign_with), SIGNER_PEM, &mut t).map_err(keep)?;
    out.keep_on_drop();
    Ok(new_set)
}
