//! One lock per token for hsm-demo processes (flock(2) on a file in hsm-demo's
//! runtime or data directory): shared for work that cannot disturb another process,
//! exclusive for work that changes the token, and held until the process ends.
//!
//! It covers hsm-demo processes only. Other PKCS#11 applications on the same SoftHSM
//! file store (pkcs11-tool, the openssl CLI with the provider) do not take it, and
//! processes of other users use their own lock directory (docs/platform.md,
//! "One file store, several processes").

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::output;

/// How a command uses the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads or signs: other processes may do the same at once.
    Shared,
    /// Creates objects under a uniqueness rule, or changes PINs (or logs in to a
    /// module whose login writes its store): no other hsm-demo process meanwhile.
    Exclusive,
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct TokenLock {
    _file: File,
}

fn file_name_part(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect()
}

/// The lock file for a token: `<dir>/<module file>-<serial>-<label>.lock`.
pub fn lock_path(dir: &Path, module: &Path, serial: &str, label: &str) -> PathBuf {
    let module = module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(
        "{}-{}-{}.lock",
        file_name_part(&module),
        file_name_part(serial),
        file_name_part(label)
    ))
}

/// Takes the lock at `path` (creating the file and its directory, 0700/0600), waiting
/// for other holders as long as it takes.
pub fn acquire(path: &Path, access: Access) -> anyhow::Result<TokenLock> {
    let dir = output::parent_of(path);
    output::create_private_dir(dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the lock directory {}: {}",
            dir.display(),
            output::reason(&e)
        )
    })?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open the token lock {}: {}",
                path.display(),
                output::reason(&e)
            )
        })?;
    let op = match access {
        Access::Shared => FlockOperation::LockShared,
        Access::Exclusive => FlockOperation::LockExclusive,
    };
    flock(&file, op).map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", path.display()))?;
    Ok(TokenLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), Path::new("/x/libsofthsm2.so"), "00 1", "my ca/1");
        assert_eq!(
            path.file_name().unwrap(),
            "libsofthsm2.so-00_1-my_ca_1.lock"
        );
        let a = acquire(&path, Access::Shared).unwrap();
        let b = acquire(&path, Access::Shared).unwrap();
        let other = File::open(&path).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop((a, b));
        let _x = acquire(&path, Access::Exclusive).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockShared).is_err());
    }
}
