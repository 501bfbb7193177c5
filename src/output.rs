//! Staging and publishing files: created new (never over something), with a mode
//! whatever the umask, synced, and moved into place with a rename that never replaces.
//! Every command that writes a file goes through here.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{renameat_with, RenameFlags, CWD};

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{what} {} already exists; refusing to overwrite", path.display())]
    Exists { what: String, path: PathBuf },

    #[error("cannot write {what} {}: {}", path.display(), reason(source))]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl OutputError {
    fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
        let (what, path) = (what.to_string(), path.to_path_buf());
        move |source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                OutputError::Exists { what, path }
            } else {
                OutputError::Io { what, path, source }
            }
        }
    }
}

/// "No such file or directory" without the "(os error 2)" suffix.
pub fn reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The directory `path` goes in ("." for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates `path` (which must not exist) with `mode`, writes `bytes` and syncs the file.
/// The mode is set explicitly, so a permissive umask cannot widen it.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32, what: &str) -> Result<(), OutputError> {
    let err = || OutputError::io(what, path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err())?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err())?;
    f.write_all(bytes).map_err(err())?;
    f.sync_all().map_err(err())
}

/// Writes `bytes` to `path` only if nothing is there: a temporary file in the same
/// directory, synced, then renamed into place without replacing anything, and the
/// directory synced. A reader sees either nothing or the whole file.
pub fn publish_file(path: &Path, bytes: &[u8], mode: u32, what: &str) -> Result<(), OutputError> {
    if path.symlink_metadata().is_ok() {
        return Err(OutputError::Exists {
            what: what.to_string(),
            path: path.to_path_buf(),
        });
    }
    let dir = parent_of(path);
    let tmp = tempfile::Builder::new()
        .prefix(".hsm-demo-")
        .tempfile_in(dir)
        .map_err(OutputError::io(what, path))?;
    let err = || OutputError::io(what, path);
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err())?;
    tmp.as_file().write_all(bytes).map_err(err())?;
    tmp.as_file().sync_all().map_err(err())?;
    // The temporary file is deleted if the rename fails.
    rename_no_replace(tmp.path(), path).map_err(err())?;
    let _ = tmp.into_temp_path().keep();
    sync_dir(dir).map_err(err())
}

/// `renameat2(RENAME_NOREPLACE)`: moves `from` to `to` only if nothing is at `to`.
pub fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(std::io::Error::from)
}

/// fsync on a directory: makes the entries created or renamed in it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// A directory that outputs are written into before they are published together.
/// Dropped, it is removed with its contents, unless [`StagingDir::keep_on_drop`] was
/// called (after an irreversible step its files may be the only copies of a secret).
pub struct StagingDir {
    path: PathBuf,
    remove_on_drop: bool,
}

impl StagingDir {
    /// A new, private (0700) directory in `parent`, named `.<prefix>-XXXXXX`.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<StagingDir, OutputError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{prefix}-"))
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(parent)
            .map_err(OutputError::io("a staging directory in", parent))?;
        Ok(StagingDir {
            path: dir.keep(),
            remove_on_drop: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on the directory survives whatever happens to this value.
    pub fn keep_on_drop(&mut self) {
        self.remove_on_drop = false;
    }

    /// Writes a new file in the directory (see [`create_new`]).
    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
        create_new(&self.path.join(name), bytes, mode, name)
    }

    /// The names of the files in the directory, sorted.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        let mut names = fs::read_dir(&self.path)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    }

    /// Moves the directory to `to` (which must not exist) and syncs both parents. On
    /// failure the directory stays where it was, is no longer removed on drop, and its
    /// path is returned with the error: the caller decides what becomes of it.
    pub fn publish(mut self, to: &Path) -> Result<(), (PathBuf, std::io::Error)> {
        self.remove_on_drop = false;
        let from = self.path.clone();
        rename_no_replace(&from, to)
            .and_then(|()| sync_dir(parent_of(to)))
            .and_then(|()| sync_dir(parent_of(&from)))
            .map_err(|e| (from, e))
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_never_replaces_and_sets_the_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        publish_file(&path, b"one", 0o600, "--out").unwrap();
        let err = publish_file(&path, b"two", 0o600, "--out").unwrap_err();
        assert!(matches!(err, OutputError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Nothing but the published file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_staging_dir_is_private_and_publishes_once() {
        let dir = tempfile::tempdir().unwrap();
        let staging = StagingDir::new_in(dir.path(), "test").unwrap();
        let mode = fs::metadata(staging.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        staging.write("a", b"x", 0o644).unwrap();
        assert!(staging.write("a", b"y", 0o644).is_err());
        let to = dir.path().join("final");
        staging.publish(&to).unwrap();
        assert_eq!(fs::read(to.join("a")).unwrap(), b"x");
        let again = StagingDir::new_in(dir.path(), "test").unwrap();
        let (kept, err) = again.publish(&to).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(kept.is_dir(), "a failed publish keeps the staged files");
    }
}
