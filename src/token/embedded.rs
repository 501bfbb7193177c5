//! The embedded default: hsm-demo's own SoftHSM2 configuration and token directory
//! under the user's data directory, created on first use.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// `$XDG_DATA_HOME/hsm-demo`, or `$HOME/.local/share/hsm-demo`.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        let xdg = PathBuf::from(xdg);
        // The XDG spec ignores relative paths.
        if xdg.is_absolute() {
            return Ok(xdg.join("hsm-demo"));
        }
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).context(
        "neither XDG_DATA_HOME nor HOME is set: cannot place the embedded SoftHSM2 token store",
    )?;
    Ok(PathBuf::from(home).join(".local/share/hsm-demo"))
}

/// Makes sure `<data dir>/softhsm2.conf` and `<data dir>/tokens/` exist (mode 0700
/// for the directories) and returns the config path.
pub fn ensure_softhsm_conf() -> anyhow::Result<PathBuf> {
    let dir = data_dir()?;
    let tokens = dir.join("tokens");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&tokens)
        .with_context(|| {
            format!(
                "cannot create the embedded token directory {}",
                tokens.display()
            )
        })?;
    let conf = dir.join("softhsm2.conf");
    if !conf.exists() {
        write_conf(&conf, &tokens).with_context(|| {
            format!(
                "cannot write the embedded SoftHSM2 config {}",
                conf.display()
            )
        })?;
    }
    Ok(conf)
}

fn write_conf(conf: &Path, tokens: &Path) -> std::io::Result<()> {
    // Written to a temporary name and renamed, so a concurrent first run never
    // reads half a file.
    let tmp = conf.with_extension(format!("conf.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(
        f,
        "# hsm-demo's embedded SoftHSM2 token store, created on first use."
    )?;
    writeln!(f, "directories.tokendir = {}", tokens.display())?;
    writeln!(f, "objectstore.backend = file")?;
    writeln!(f, "log.level = ERROR")?;
    writeln!(f, "slots.removable = false")?;
    f.sync_all()?;
    std::fs::rename(&tmp, conf)
}
