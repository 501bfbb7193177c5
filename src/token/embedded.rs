//! The embedded default: hsm-demo's own SoftHSM2 configuration and token directory
//! under the user's data directory, created on first use.

use std::path::Path;

use crate::output;

use super::TokenError;

/// What is wrong with a SoftHSM2 store, if anything: the config file or the token
/// directory it names missing or unreadable. SoftHSM itself reports these as a bare
/// CKR_GENERAL_ERROR, or as "no token".
pub fn store_problem(conf: &Path) -> Option<String> {
    let text = match std::fs::read_to_string(conf) {
        Ok(text) => text,
        Err(e) => {
            return Some(format!(
                "SoftHSM2's config {} (SOFTHSM2_CONF) cannot be read: {}",
                conf.display(),
                output::reason(&e)
            ))
        }
    };
    let dir = text.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == "directories.tokendir").then(|| value.trim().to_string())
    })?;
    match std::fs::read_dir(&dir) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "the token directory {dir} named in {} cannot be read: {}",
            conf.display(),
            output::reason(&e)
        )),
    }
}

/// Makes sure `conf` and a `tokens/` directory beside it exist (directories 0700,
/// the config 0600). The config names only that directory: SoftHSM treats every
/// subdirectory of its tokendir as a token.
pub fn ensure_store(conf: &Path) -> Result<(), TokenError> {
    let tokens = output::parent_of(conf).join("tokens");
    output::create_private_dir(&tokens).map_err(|e| {
        TokenError::Store(format!(
            "cannot create the embedded token directory {}: {}",
            tokens.display(),
            output::reason(&e)
        ))
    })?;
    if conf.exists() {
        return Ok(());
    }
    let text = format!(
        "# hsm-demo's embedded SoftHSM2 token store, created on first use.\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        tokens.display()
    );
    // Published atomically: a concurrent first run sees no half-written file, and
    // loses nothing if the other run won the race.
    match output::publish_file(conf, text.as_bytes(), 0o600, "the embedded SoftHSM2 config") {
        Ok(()) | Err(output::OutputError::Exists { .. }) => Ok(()),
        Err(e) => Err(TokenError::Store(e.to_string())),
    }
}
