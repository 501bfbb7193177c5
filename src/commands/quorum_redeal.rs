//! `quorum-redeal`: M current shares of a role open it; a fresh secret from the token
//! RNG becomes its PIN, split into a new share set (ceremony::redeal does the work).

use std::path::PathBuf;

use crate::ceremony::{self, redeal, SecretShape};
use crate::console::{self, outln};
use crate::error::usage;
use crate::hsm::Hsm;
use crate::quorum::{self, Purpose, Quorum};
use crate::settings::Settings;
use crate::token::KeySelector;

use super::{login_on, shares, Use};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// The SO quorum (the ceremony's --quorum); signing the transcript needs a user
    /// login as well (--pin-share, --pin-file, HSM_DEMO_PIN or a prompt)
    So,
    /// The activation quorum over the user PIN (--activation-quorum): the --share
    /// files are the login
    User,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Whose quorum is re-dealt
    #[arg(long, value_enum)]
    role: RoleArg,

    /// A current share of that role; once per custodian present (M of the set)
    #[arg(long = "share", value_name = "FILE", required = true)]
    shares: Vec<PathBuf>,

    /// The new set's M/N (custodians may change in number) [default: the old set's]
    #[arg(long, value_name = "M/N")]
    quorum: Option<Quorum>,

    /// Where the new share files and the signed transcript go; created, never
    /// overwritten [default: ./redeal-<role>-<UTC time>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// The label of the token key that signs the transcript
    #[arg(long, value_name = "LABEL", default_value = "root-ca-key")]
    sign_with: String,

    /// The CA directory of the --sign-with key: the re-deal is recorded in its
    /// audit.log (the share files' SHA-256, old and new), with a checkpoint
    #[arg(long, value_name = "DIR")]
    ca: Option<PathBuf>,

    #[command(flatten)]
    note: super::args::NoteArg,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let (purpose, role_name) = match a.role {
        RoleArg::So => (Purpose::SoPin, "so"),
        RoleArg::User => (Purpose::Activation, "user"),
    };
    if matches!(a.role, RoleArg::User) && !settings.pin_shares.is_empty() {
        return Err(usage("quorum-redeal --role user logs in with its --share files; --pin-share is not used"));
    }
    let note = a.note.checked()?;
    let out = ceremony::out_dir(a.out.as_deref(), &format!("redeal-{role_name}"))?;
    // Lock order (lock.rs): the CA directory before the token store.
    let mut ca = a.ca.as_deref().map(crate::ca::CaDir::open).transpose()?;
    let old_files = crate::ca::audit::files_sha256(&a.shares)?;
    let (secret, binding) = shares::combine_current(settings, &a.shares, purpose)?;
    let (first, _, _) = quorum::check_file(&a.shares[0])?;
    let old_quorum = Quorum {
        threshold: first.threshold,
        shares: first.shares,
    };
    let old_set = first.set_id();
    let new_quorum = a.quorum.unwrap_or(old_quorum);
    let old_pin = super::pin::pin_from_bytes(&secret, &format!("the {} recombined from the shares", purpose.secret_name()))?;
    drop(secret);

    let (module, token, lock) = shares::token_of(settings, &binding, Use::Change)?;
    module.require_functions(
        &token.label,
        "re-deal a quorum",
        &[(cryptoki::context::Function::SetPIN, "C_SetPIN")],
    )?;
    let shape = SecretShape::for_token(module.max_pin_len(&token)?)?;
    if purpose == Purpose::SoPin {
        // Checked before anything is created (one application cannot be logged in as
        // SO and as the user at once: the SO login comes first).
        module.login_so(&token, &old_pin)?.logout()?;
    }
    let reserved = ceremony::reserve_marked(&out, &redeal::marker(purpose, &old_set))?;
    let hsm = match purpose {
        Purpose::SoPin => login_on(settings, module, &token, lock)?,
        _ => Hsm::login(module, &token, old_pin.clone(), settings.provider.clone(), lock)?,
    };
    let selector = KeySelector {
        label: Some(a.sign_with.clone()),
        id: None,
    };
    // Loaded before the PIN changes: the provider's login is then already made.
    let key = hsm.signing_key(&selector).map_err(|e| {
        e.context(format!(
            "the transcript is signed by the key '{}'; name another with --sign-with LABEL",
            a.sign_with
        ))
    })?;
    if let Some(ca) = &ca {
        ca.require_key(key.public(), &format!("the key '{}' (--sign-with)", a.sign_with))?;
    }
    let launcher = super::launcher(settings)?;
    let plan = redeal::Plan {
        purpose,
        old_pin,
        old_files: a.shares.clone(),
        old_set,
        old_quorum,
        new: (new_quorum, shape),
        binding,
    };
    let mut printer = console::Printer::default();
    let mut print = |line: &str| printer.line(line);
    let who = format!("the key '{}'", a.sign_with);
    let done = redeal::run(&hsm, &launcher, &plan, (&key, &who), settings.data_dir.as_deref(), reserved, &mut print)?;
    printer.finish()?;
    if let Some(ca) = &mut ca {
        let mut inputs = serde_json::Map::new();
        inputs.insert("role".into(), role_name.into());
        inputs.insert("old_set".into(), plan.old_set.clone().into());
        inputs.insert("old_quorum".into(), plan.old_quorum.to_string().into());
        inputs.insert("shares".into(), old_files);
        let mut outputs = serde_json::Map::new();
        outputs.insert("new_set".into(), done.new_set.clone().into());
        outputs.insert("quorum".into(), done.quorum.to_string().into());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&out)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        outputs.insert("files".into(), crate::ca::audit::files_sha256(&files)?);
        let who = crate::ca::audit::Who::of(&hsm, &ca.key_uri, note);
        ca.record("quorum-redeal", &who, (inputs, outputs), Some(&key))?;
    }
    outln!(
        "Re-dealt the {} of token '{}' (serial {}): share set {} ({old_quorum}) retired, share set {} ({}) in force, in {}",
        purpose.secret_name(),
        token.label,
        token.serial,
        plan.old_set,
        done.new_set,
        done.quorum,
        out.display()
    )?;
    Ok(())
}
