//! `key-ceremony`: argument checks and PINs, then the ceremony module does the work.

use std::io::Write as _;
use std::path::PathBuf;

use crate::ceremony::{self, Custodian, Options, MAX_DAYS};
use crate::cli::GlobalArgs;
use crate::error::usage;
use crate::pin::{self, PinRole};
use crate::quorum::Quorum;

use super::open_token;

/// openssl-conf/root-ca.cnf, built in for runs outside the source tree.
const BUILTIN_PROFILE: &str = include_str!("../../openssl-conf/root-ca.cnf");
const DEFAULT_PROFILE: &str = "openssl-conf/root-ca.cnf";

pub struct Args {
    pub label: String,
    pub config: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub quorum: Option<Quorum>,
    pub days: u32,
    pub so_pin_file: Option<PathBuf>,
}

pub fn run(g: &GlobalArgs, a: Args) -> anyhow::Result<()> {
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
    if out.exists() {
        return Err(usage(format!(
            "--out {} already exists; a ceremony never overwrites",
            out.display()
        )));
    }
    let parent = ceremony::output_parent(&out);
    if !parent.is_dir() {
        return Err(usage(format!(
            "--out {}: the directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    // The profile: the file named, else the repository's, else the built-in copy.
    let mut _builtin = None;
    let (config, config_name) = match &a.config {
        Some(p) if !p.is_file() => {
            return Err(usage(format!("--config {} does not exist", p.display())))
        }
        Some(p) => (p.clone(), p.display().to_string()),
        None if std::path::Path::new(DEFAULT_PROFILE).is_file() => {
            (PathBuf::from(DEFAULT_PROFILE), DEFAULT_PROFILE.to_string())
        }
        None => {
            let mut f = tempfile::NamedTempFile::new()?;
            f.write_all(BUILTIN_PROFILE.as_bytes())?;
            let path = f.path().to_path_buf();
            _builtin = Some(f);
            (path, format!("{DEFAULT_PROFILE} (built-in copy)"))
        }
    };
    if a.quorum.is_some() && !pin::available(PinRole::SecurityOfficer, a.so_pin_file.as_deref()) {
        return Err(usage(format!(
            "the quorum step needs the token's current SO PIN: {}; or pass --no-quorum to make none",
            PinRole::SecurityOfficer.how_to_supply()
        )));
    }
    let (module, token) = open_token(g, None)?;
    let so_pin = match a.quorum {
        Some(_) => Some(pin::read_pin(
            PinRole::SecurityOfficer,
            a.so_pin_file.as_deref(),
            &token.label,
        )?),
        None => None,
    };
    let user_pin = pin::read_pin(PinRole::User, g.pin_file.as_deref(), &token.label)?;
    let opts = Options {
        label: a.label,
        config,
        config_name,
        out,
        quorum: a.quorum,
        days: a.days,
    };
    ceremony::run(
        Custodian {
            module,
            token,
            user_pin,
            so_pin,
        },
        &opts,
    )?;
    Ok(())
}
