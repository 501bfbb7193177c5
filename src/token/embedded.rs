//! The embedded default: hsm-demo's own SoftHSM2 configuration and token directory
//! under the user's data directory, created on first use.

use std::path::Path;

use crate::output;

use super::TokenError;

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
