//! Before Step 1: the output directory reserved with its INCOMPLETE marker, earlier
//! incomplete ceremonies found, and the token-side checks made before any login.

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;

use crate::output::OutputDir;
use crate::token::{Module, TokenRef};

use super::transcript::utc_now;
use super::INCOMPLETE;

/// The output directory: `given`, else `<prefix>-<UTC time>` in the current directory;
/// one that can be created (see [`check_out`]).
pub fn out_dir(given: Option<&Path>, prefix: &str) -> Result<PathBuf, crate::error::UsageError> {
    let out = given.map_or_else(|| PathBuf::from(format!("{prefix}-{}", super::utc_stamp())), Path::to_path_buf);
    check_out(&out)?;
    Ok(out)
}

/// An output directory that can be created: it does not exist, and its parent is a
/// writable directory.
pub fn check_out(out: &Path) -> Result<(), crate::error::UsageError> {
    let bad = |why: String| Err(crate::error::UsageError(format!("--out {}: {why}", out.display())));
    if out.to_string_lossy().chars().any(char::is_control) {
        return bad("has a control character in its name (a CR, LF or escape would garble every line that names the files); nothing was created".into());
    }
    if out.symlink_metadata().is_ok() {
        return bad("already exists; a ceremony never overwrites, nor does a re-deal".into());
    }
    let parent = crate::output::parent_of(out);
    if !parent.is_dir() {
        return bad(format!("the directory {} does not exist", parent.display()));
    }
    if rustix::fs::access(parent, rustix::fs::Access::WRITE_OK).is_err() {
        return bad(format!("the directory {} is not writable", parent.display()));
    }
    Ok(())
}

/// Creates the output directory (which must not exist) with its INCOMPLETE marker.
pub fn reserve(out: &Path) -> anyhow::Result<OutputDir> {
    let marker = format!(
        "hsm-demo key ceremony, started {}.\n\
         This directory is not a completed ceremony: the ceremony stopped before its end,\n\
         or is still running. If share files are here, the token's SO PIN may already be\n\
         the secret they hold: keep them, and check with `hsm-demo quorum-reset-pin`.\n",
        utc_now()
    );
    reserve_marked(out, &marker)
}

/// Creates the output directory (which must not exist) with an INCOMPLETE marker
/// that says `marker`.
pub fn reserve_marked(out: &Path, marker: &str) -> anyhow::Result<OutputDir> {
    let dir = OutputDir::reserve(out, "--out")?;
    dir.write(INCOMPLETE, marker.as_bytes(), 0o644)?;
    Ok(dir)
}

/// Directories beside `out` that hold an incomplete ceremony (for the next run to
/// point at).
pub fn incomplete_near(out: &Path) -> Vec<PathBuf> {
    let parent = crate::output::parent_of(out);
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(INCOMPLETE).is_file())
        .collect();
    found.sort();
    found
}

/// Checks made before the user logs in and before anything is created: the label is
/// free (public objects are visible without a PIN; generation checks private ones
/// again) and the SO PIN is right. The SO login must come before the user's: one
/// application cannot be logged in as both (CKR_USER_ANOTHER_ALREADY_LOGGED_IN). With
/// `backup`, the token must hold trusted backups: the wrapping mechanisms, and an SO
/// that can make a CKA_TRUSTED key (tried with a session object, destroyed at once).
pub fn preflight(
    module: &Module,
    token: &TokenRef,
    label: &str,
    so_pin: Option<&AuthPin>,
    backup: bool,
) -> anyhow::Result<()> {
    if backup {
        module.require_wrapping(token)?;
    }
    if let Err(e) = module.public_session(token)?.ensure_label_free(label) {
        let hint = format!(
            "if it is left from a ceremony that did not complete, remove it with 'hsm-demo delete-key --label {label}'"
        );
        return Err(anyhow::Error::from(e).context(hint));
    }
    if let Some(so) = so_pin {
        let session = module.login_so(token, so).map_err(|e| {
            anyhow::Error::from(e).context("check the current SO PIN before Step 1")
        })?;
        if backup {
            session.probe_trusted_keys(&[0x5a; 32])?;
        }
        session.logout()?;
    }
    Ok(())
}

