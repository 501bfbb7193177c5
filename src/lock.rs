//! One lock per token store for hsm-demo processes (flock(2) on a file in hsm-demo's
//! runtime or data directory), keyed by the module and the configuration it reads
//! (SOFTHSM2_CONF, ...): shared for work that cannot disturb another process,
//! exclusive for work that changes a token, held until the process ends. It is taken
//! before the module is loaded: SoftHSM2 reads its token files in C_Initialize and
//! while listing tokens, and a login in another process rewrites them.
//!
//! Lock order: a CA directory's lock (`ca.lock`, `ca::CaDir::open` and `ca::DirLock`)
//! is always taken before the token store's, never after it: `issue`, `revoke`, `crl`
//! and `list-issued` open the CA directory and then log in; `ca-init` locks its
//! directory before it reads the token. Two commands on one directory therefore never
//! wait on each other through the store lock.
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
pub struct StoreLock {
    /// None for a `bench` worker, whose parent holds the lock for it.
    file: Option<File>,
    access: std::cell::Cell<Access>,
    /// Made exclusive only for logins on a module whose login writes its store.
    for_login: std::cell::Cell<bool>,
}

impl StoreLock {
    /// Like [`StoreLock::upgrade`], for the logins of a module whose login rewrites its
    /// store (SoftHSM2): [`StoreLock::logins_done`] makes it shared again.
    pub fn upgrade_for_login(&mut self) -> anyhow::Result<()> {
        let was = self.access.get();
        self.upgrade()?;
        if was == Access::Shared {
            self.for_login.set(true);
        }
        Ok(())
    }

    /// After this process's logins (its own and the provider's), a lock made exclusive
    /// only for them goes back to shared: signing processes then run side by side, and a
    /// login elsewhere still waits until none of them holds the lock, so no login ever
    /// overlaps another process's work. flock(2) converts by unlocking first; a process
    /// waiting for the exclusive lock may take it in between, and this one then waits
    /// (it does nothing meanwhile).
    pub fn logins_done(&self) -> anyhow::Result<()> {
        if !self.for_login.get() {
            return Ok(());
        }
        if let Some(file) = &self.file {
            flock(file, FlockOperation::LockShared)
                .map_err(|e| anyhow::anyhow!("cannot lock the token store: {e}"))?;
        }
        self.access.set(Access::Shared);
        self.for_login.set(false);
        Ok(())
    }

    /// Turns a shared lock into an exclusive one, waiting for the other holders. Not
    /// atomic (flock(2) drops the shared lock first), so two upgrading processes take
    /// turns instead of deadlocking.
    pub fn upgrade(&mut self) -> anyhow::Result<()> {
        if self.access.get() == Access::Exclusive {
            return Ok(());
        }
        if let Some(file) = &self.file {
            flock(file, FlockOperation::LockExclusive)
                .map_err(|e| anyhow::anyhow!("cannot lock the token store: {e}"))?;
        }
        self.access.set(Access::Exclusive);
        Ok(())
    }
}

/// 64-bit FNV-1a: a stable short name for a lock key (not a security function).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain([0u8].iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A stable short name for a path (a token directory), for the names of hsm-demo's own
/// files about it.
pub fn store_key(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    format!("{:016x}", fnv1a(&[path.as_os_str().as_bytes()]))
}

/// The lock file for a module and the configuration it reads:
/// `<dir>/<module file name>-<hash of its path and configuration>.lock`.
pub fn lock_path(dir: &Path, module: &Path, config: &[(&str, std::ffi::OsString)]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt as _;
    let mut parts: Vec<&[u8]> = vec![module.as_os_str().as_bytes()];
    for (name, value) in config {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    let name: String = module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    dir.join(format!("{name}-{:016x}.lock", fnv1a(&parts)))
}

/// No lock of its own: for a `bench --processes` worker, whose parent holds the store's
/// lock exclusively for all its workers and lets them log in one at a time.
pub fn held_by_parent() -> StoreLock {
    StoreLock {
        file: None,
        access: std::cell::Cell::new(Access::Exclusive),
        for_login: std::cell::Cell::new(false),
    }
}

/// Takes the lock at `path` (creating the file and its directory, 0700/0600), waiting
/// for other holders as long as it takes.
pub fn acquire(path: &Path, access: Access) -> anyhow::Result<StoreLock> {
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
    Ok(StoreLock {
        file: Some(file),
        access: std::cell::Cell::new(access),
        for_login: std::cell::Cell::new(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_shared_shares_and_upgrades() {
        let dir = tempfile::tempdir().unwrap();
        let conf = vec![("SOFTHSM2_CONF", std::ffi::OsString::from("/a/b.conf"))];
        let path = lock_path(dir.path(), Path::new("/x/libsofthsm2.so"), &conf);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("libsofthsm2.so-") && name.ends_with(".lock"), "{name}");
        let other_conf = vec![("SOFTHSM2_CONF", std::ffi::OsString::from("/a/c.conf"))];
        assert_ne!(path, lock_path(dir.path(), Path::new("/x/libsofthsm2.so"), &other_conf));
        let a = acquire(&path, Access::Shared).unwrap();
        let mut b = acquire(&path, Access::Shared).unwrap();
        let other = File::open(&path).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(a);
        b.upgrade_for_login().unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockShared).is_err());
        // After the logins it is shared again: others may share, none may exclude.
        b.logins_done().unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockShared).is_ok());
        flock(&other, FlockOperation::Unlock).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
    }
}
