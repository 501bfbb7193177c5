//! `key-ceremony`: argument checks and PINs, then the ceremony module does the work;
//! this command prints its lines as they come.

use std::path::{Path, PathBuf};

use crate::bridge::{self, Profile};
use crate::ceremony::{self, Options, MAX_DAYS};
use crate::console;
use crate::error::{usage, SetupError};
use crate::output;
use crate::pin::{self, PinRole};
use crate::quorum::Quorum;
use crate::settings::Settings;

use super::{login_on, open_token};

/// openssl-conf/root-ca.cnf, built in for runs outside the source tree.
const BUILTIN_PROFILE: &str = include_str!("../../openssl-conf/root-ca.cnf");
const DEFAULT_PROFILE: &str = "openssl-conf/root-ca.cnf";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CKA_LABEL of the root key (refused if any object has it)
    #[arg(long, default_value = "root-ca-key")]
    label: String,

    /// Certificate profile: an OpenSSL config with [req] distinguished_name and
    /// x509_extensions (default: openssl-conf/root-ca.cnf, or its built-in copy)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Output directory (must not exist; default ./ceremony-<UTC time>)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// M/N: split the new SO PIN into N custodian shares, any M of which open it
    #[arg(
        long,
        value_name = "M/N",
        default_value = "3/5",
        conflicts_with = "no_quorum"
    )]
    quorum: Quorum,

    /// Make no quorum and leave the SO PIN as it is (says so in the transcript)
    #[arg(long)]
    no_quorum: bool,

    /// Validity of the root certificate in days (at most 25 years)
    #[arg(long, default_value_t = 3650, value_name = "N")]
    days: u32,

    /// File holding the current SO PIN; else HSM_DEMO_SO_PIN, else a prompt
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    if a.label.is_empty() {
        return Err(usage("--label must not be empty"));
    }
    if a.days == 0 || a.days > MAX_DAYS {
        return Err(usage(format!(
            "--days {} is out of range: 1 to {MAX_DAYS} (25 years)",
            a.days
        )));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("ceremony-{}", ceremony::utc_stamp())));
    if out.symlink_metadata().is_ok() {
        return Err(usage(format!(
            "--out {} already exists; a ceremony never overwrites",
            out.display()
        )));
    }
    let parent = output::parent_of(&out);
    if !parent.is_dir() {
        return Err(usage(format!(
            "--out {}: the directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    let (profile, profile_name) = profile(a.config.as_deref())?;
    bridge::try_profile(&profile, a.days).map_err(|e| {
        usage(format!(
            "the profile {profile_name} cannot make a root certificate (tried with a throwaway key, nothing was created): {e}"
        ))
    })?;
    let quorum = (!a.no_quorum).then_some(a.quorum);
    let so_file = a.so_pin_file.as_deref();
    if quorum.is_some() && !pin::available(settings, PinRole::SecurityOfficer, so_file) {
        return Err(usage(format!(
            "the quorum step needs the token's current SO PIN: {}; or pass --no-quorum to make none",
            PinRole::SecurityOfficer.how_to_supply()
        )));
    }
    for dir in ceremony::incomplete_near(&out) {
        let marker = dir.join(ceremony::INCOMPLETE);
        console::note(&format!(
            "{} holds a ceremony that did not complete; if it has share files they may hold the token's SO PIN (see {})",
            dir.display(),
            marker.display()
        ));
    }
    // The name is taken before anything else happens: a collision stops here.
    let reserved = ceremony::reserve(&out)?;
    let (module, token, lock) = open_token(settings, None, super::Use::Change)?;
    let quorum = match quorum {
        Some(q) => Some((q, ceremony::quorum_secret_len(module.max_pin_len(&token)?).map_err(SetupError)?)),
        None => None,
    };
    let so_pin = match quorum {
        Some(_) => Some(pin::read_pin(
            settings,
            PinRole::SecurityOfficer,
            so_file,
            &token.label,
        )?),
        None => None,
    };
    ceremony::preflight(&module, &token, &a.label, so_pin.as_ref())?;
    let hsm = login_on(settings, module, &token, lock)?;
    let opts = Options {
        label: a.label,
        profile,
        profile_name,
        quorum,
        days: a.days,
    };
    let mut printer = console::Printer::default();
    let mut print = |line: &str| printer.line(line);
    ceremony::run(&hsm, settings, so_pin.as_ref(), &opts, reserved, &mut print)?;
    printer.finish().map_err(|e| {
        anyhow::Error::from(e).context(format!(
            "the ceremony completed, but its report was not fully written; the outputs are in {}",
            out.display()
        ))
    })
}

/// The profile: the file named, else the repository's, else the built-in copy.
fn profile(config: Option<&Path>) -> anyhow::Result<(Profile, String)> {
    let (profile, name) = match config {
        Some(p) if !p.is_file() => {
            return Err(usage(format!("--config {} does not exist", p.display())))
        }
        Some(p) => (Profile::load(p), p.display().to_string()),
        None if Path::new(DEFAULT_PROFILE).is_file() => (
            Profile::load(Path::new(DEFAULT_PROFILE)),
            DEFAULT_PROFILE.to_string(),
        ),
        None => {
            let name = format!("{DEFAULT_PROFILE} (built-in copy)");
            (Profile::from_text(BUILTIN_PROFILE, &name), name)
        }
    };
    Ok((profile.map_err(usage)?, name))
}
