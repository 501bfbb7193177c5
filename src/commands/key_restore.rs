//! `key-restore`: a wrapped key (`root-key.wrapped`) and M of its backup shares restore
//! the key onto a token, of the same or another PKCS#11 module; the restored key signs
//! a fresh challenge that verifies under the original public key before success is
//! reported. Unwrapping needs no trusted key (CKA_TRUSTED governs wrapping only,
//! PKCS#11 v2.40 §4.9): the wrap secret becomes an unwrap-only session object of the
//! user's session, so no SO PIN is needed and nothing of it stays in the token.
//! `key-backup`: another wrapped copy of a key kept for backup (the SO installs the
//! trusted wrap key, as in the ceremony).

use std::path::PathBuf;

use crate::ca::{audit, CaDir};
use crate::ceremony::backup::{self, BackupRefused, WrappedKey};
use crate::commands::pin::{self, PinSource};
use crate::console::outln;
use crate::error::usage;
use crate::output;
use crate::quorum::{self, Purpose};
use crate::settings::Settings;

use super::{login_on, open_token, KeyArgs, Use};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The wrapped key (a ceremony's root-key.wrapped, or key-backup's output)
    #[arg(long, value_name = "FILE")]
    wrapped: PathBuf,

    /// A custodian's backup share file; once per custodian present
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,

    /// The label of the restored key (default: the wrapped key's); must be free
    #[arg(long)]
    label: Option<String>,

    /// The CA directory whose key this is: the restore is recorded in its audit.log,
    /// with a checkpoint signed by the restored key
    #[arg(long, value_name = "DIR")]
    ca: Option<PathBuf>,

    #[command(flatten)]
    note: super::args::NoteArg,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    key: KeyArgs,

    /// A custodian's backup share file (of the quorum the key was backed up under)
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,

    /// Where to write the new wrapped copy (never overwritten)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// File holding the SO PIN; else HSM_DEMO_SO_PIN, else a prompt
    #[arg(long, value_name = "FILE", conflicts_with = "so_shares")]
    so_pin_file: Option<PathBuf>,

    /// An SO custodian's share (the SO PIN under a ceremony's quorum); once per
    /// custodian present
    #[arg(long = "so-share", value_name = "FILE")]
    so_shares: Vec<PathBuf>,

    /// The CA directory whose key this is: the backup is recorded in its audit.log,
    /// with a checkpoint signed by the key
    #[arg(long, value_name = "DIR")]
    ca: Option<PathBuf>,

    #[command(flatten)]
    note: super::args::NoteArg,
}

pub fn restore(settings: &Settings, a: RestoreArgs) -> anyhow::Result<()> {
    let note = a.note.checked()?;
    // Everything that needs no token first: the file, the shares, their agreement.
    let wrapped = WrappedKey::read(&a.wrapped)?;
    let public = wrapped.public_key()?;
    // Lock order (lock.rs): the CA directory before the token store.
    let mut ca = a.ca.as_deref().map(CaDir::open).transpose()?;
    if let Some(ca) = &ca {
        ca.require_key(&public, &format!("the key in {}", a.wrapped.display()))?;
    }
    let secret = backup::secret_for(&a.shares, &wrapped)?;
    let label = a.label.clone().unwrap_or_else(|| wrapped.label.clone());
    if label.is_empty() {
        return Err(usage("--label must not be empty"));
    }
    let (module, token, lock) = open_token(settings, None, Use::Change)?;
    let mech = module.require_wrapping(&token)?;
    let hsm = login_on(settings, module, &token, lock)?;
    // The label must be free among public and private objects, before anything is made.
    hsm.session().ensure_label_free(&label)?;
    let restored = backup::unwrap_in_session(&hsm, mech, &secret, &wrapped, &public, &label)?;
    // Proof before success: the restored key signs a fresh challenge through the
    // provider (checked with the token's public key), which verifies under the
    // original public key too; the token's public key is the original.
    let undo = |e: anyhow::Error| {
        let _ = hsm.session().destroy_key(&restored, hsm.session().public_key_for(&restored).ok());
        e.context("the restored key did not prove itself; what was restored was destroyed")
    };
    let proved = (|| -> anyhow::Result<crate::hsm::SigningKey<'_>> {
        let key = hsm.load_key(restored.clone())?;
        if crate::bridge::spki_sha256(key.public())? != crate::bridge::spki_sha256(&public)? {
            anyhow::bail!("the restored key's public key is not the original");
        }
        let challenge = hsm.session().random(32)?;
        let scheme = key.scheme(None, None)?;
        let sig = key.sign(scheme, |feed| Ok(feed(&challenge)?))?;
        if !crate::bridge::verify(&public, scheme, &sig, |feed| Ok(feed(&challenge)?))? {
            anyhow::bail!("the restored key's signature does not verify under the original public key");
        }
        Ok(key)
    })();
    let key = proved.map_err(undo)?;
    if let Some(ca) = &mut ca {
        let mut inputs = serde_json::Map::new();
        inputs.insert("wrapped".into(), audit::files_sha256(std::slice::from_ref(&a.wrapped))?);
        inputs.insert("shares".into(), audit::files_sha256(&a.shares)?);
        let mut outputs = serde_json::Map::new();
        outputs.insert("restored".into(), restored.uri.clone().into());
        outputs.insert("spki_sha256".into(), wrapped.spki_sha256.clone().into());
        let who = audit::Who::of(&hsm, &restored.uri, note);
        ca.record("key-restore", &who, (inputs, outputs), Some(&key))?;
    }
    let custody = hsm.session().custody(restored.handle)?;
    outln!("Restored key '{label}' ({}) into token '{}' (serial {})", wrapped.algorithm, token.label, token.serial)?;
    outln!("  from:     {} (ceremony {}, wrap key check value {})", a.wrapped.display(), wrapped.ceremony_id, wrapped.wrap_key_check)?;
    outln!("  proof:    a fresh challenge signed in the token verifies under the original public key (SPKI SHA-256 {})", wrapped.spki_sha256)?;
    outln!("  custody:  {}", custody.describe())?;
    outln!("  uri:      {}", restored.uri)?;
    Ok(())
}

pub fn backup(settings: &Settings, a: BackupArgs) -> anyhow::Result<()> {
    let note = a.note.checked()?;
    output::refuse_existing(&a.out, "--out")?;
    // Lock order (lock.rs): the CA directory before the token store.
    let mut ca = a.ca.as_deref().map(CaDir::open).transpose()?;
    let (secret, binding) = quorum::combine(&a.shares, Purpose::Backup)?;
    let (selector, uri) = a.key.selector()?;
    let (module, token, lock) = open_token(settings, uri.as_ref(), Use::Change)?;
    module.require_wrapping(&token)?;
    // The key, read as the user: it must be extractable only under a trusted key.
    let user = super::user_pin(settings, &token)?;
    let (private, public) = {
        let session = module.login_user(&token, &user)?;
        let private = session.find_private_key(&selector)?;
        let custody = session.custody(private.handle)?;
        if !custody.trusted_wrap_only() {
            return Err(BackupRefused(format!(
                "key '{}' was generated with CKA_WRAP_WITH_TRUSTED false or never extractable ({}): PKCS#11 lets no one change that (v2.40 §4.9), so it can never be backed up; nothing was changed",
                private.label,
                custody.describe()
            ))
            .into());
        }
        let handle = session.public_key_for(&private)?;
        (private.clone(), crate::hsm::public_key_of(&session, handle, &private.kind)?)
    };
    if let Some(ca) = &ca {
        ca.require_key(&public, &format!("key '{}'", private.label))?;
    }
    let algo = crate::token::Algorithm::ALL
        .into_iter()
        .find(|a| a.kind() == private.kind)
        .ok_or_else(|| usage(format!("key '{}' is of no algorithm hsm-demo generates", private.label)))?;
    let so_pin = so_pin(settings, &a.so_shares, a.so_pin_file.as_deref(), &token)?;
    let wrap_label = format!("hsm-demo wrap key {}", hex::encode(module.public_session(&token)?.random(8)?));
    backup::install_in_process(&module, &token, &so_pin, &secret, &wrap_label)?;
    let hsm = login_on(settings, module, &token, lock)?;
    let private = hsm.session().find_private_key(&selector)?;
    let blob = backup::wrap_in_session(hsm.session(), &wrap_label, &private)?;
    let file = WrappedKey {
        format: backup::FORMAT.into(),
        label: private.label.clone(),
        algorithm: algo.name().into(),
        spki: crate::bridge::base64_encode(&public.public_key_to_der()?),
        spki_sha256: hex::encode(crate::bridge::spki_sha256(&public)?),
        mechanism: crate::token::wrap::WRAP_MECHANISM_NAME.into(),
        wrap_key_check: crate::bridge::aes_check_value(&secret)?,
        ceremony_id: binding.ceremony_id,
        wrapped: hex::encode(&blob),
    };
    let text = serde_json::to_string_pretty(&file)?;
    if let Some(ca) = &mut ca {
        let mut inputs = serde_json::Map::new();
        inputs.insert("shares".into(), audit::files_sha256(&a.shares)?);
        inputs.insert("so_shares".into(), audit::files_sha256(&a.so_shares)?);
        let mut outputs = serde_json::Map::new();
        outputs.insert("wrap_key_check".into(), file.wrap_key_check.clone().into());
        outputs.insert("spki_sha256".into(), file.spki_sha256.clone().into());
        audit::record_output(&mut outputs, &a.out, text.as_bytes());
        let key = hsm.load_key(private.clone())?;
        let who = audit::Who::of(&hsm, &ca.key_uri, note);
        ca.record("key-backup", &who, (inputs, outputs), Some(&key))?;
    }
    output::publish_file(&a.out, text.as_bytes(), 0o644, "--out")?;
    outln!("Wrapped key '{}' ({} bytes, {}) into {}", private.label, blob.len(), file.mechanism, a.out.display())?;
    outln!("  wrap key check value {}; restore it with key-restore and {} of the backup shares", file.wrap_key_check, a.shares.len())?;
    Ok(())
}

/// The SO PIN: recombined from SO custodian shares of this token, else from a file, the
/// environment or a prompt.
fn so_pin(settings: &Settings, shares: &[PathBuf], file: Option<&std::path::Path>, token: &crate::token::TokenRef) -> anyhow::Result<cryptoki::types::AuthPin> {
    if shares.is_empty() {
        return pin::read_pin(settings, PinSource::SecurityOfficer, file, &token.label);
    }
    let (secret, binding) = super::shares::combine_current(settings, shares, Purpose::SoPin)?;
    if binding.token_serial != token.serial {
        return Err(usage(format!(
            "these SO shares belong to token serial {}, not to '{}' (serial {}); nothing was changed",
            binding.token_serial, token.label, token.serial
        )));
    }
    Ok(pin::pin_from_bytes(&secret, "the SO PIN recombined from the shares")?)
}
