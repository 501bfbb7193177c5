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

    // `err`, not `source`: the message already quotes it, so it is not chained.
    #[error("cannot write {what} {}: {}", path.display(), reason(err))]
    Io {
        what: String,
        path: PathBuf,
        err: std::io::Error,
    },
}

impl OutputError {
    /// Whether the user can fix it by naming another path (an existing output, a
    /// missing or forbidden directory); a full disk or an I/O error is not that.
    pub fn is_input(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            OutputError::Exists { .. } => true,
            OutputError::Io { err, .. } => matches!(err.kind(), K::NotFound | K::PermissionDenied | K::NotADirectory | K::IsADirectory),
        }
    }

    fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
        let (what, path) = (what.to_string(), path.to_path_buf());
        move |source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                OutputError::Exists { what, path }
            } else {
                OutputError::Io {
                    what,
                    path,
                    err: source,
                }
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

/// Refuses, before any work, an output path that exists or whose directory does not:
/// what the work makes (a signed certificate) must not be lost for want of a place.
/// (See also [`same_file`] for two outputs of one command.)
/// `publish_file` checks again when it writes.
pub fn refuse_existing(path: &Path, what: &str) -> Result<(), OutputError> {
    if path.symlink_metadata().is_ok() {
        return Err(OutputError::Exists {
            what: what.to_string(),
            path: path.to_path_buf(),
        });
    }
    if !parent_of(path).is_dir() {
        return Err(OutputError::Io {
            what: what.to_string(),
            path: path.to_path_buf(),
            err: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    Ok(())
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

/// syncfs(2) on the filesystem of `dir`: every staged file on it reaches the disk.
pub fn sync_filesystem(dir: &Path) -> Result<(), OutputError> {
    let d = File::open(dir).map_err(OutputError::io("output directory", dir))?;
    rustix::fs::syncfs(&d).map_err(|e| OutputError::io("output directory", dir)(e.into()))
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

/// A directory this process created (it must not have existed) and writes outputs
/// into. Every file written is durable (file and directory synced) when `write`
/// returns. Dropped, the directory is removed with its contents, unless
/// [`OutputDir::keep_on_drop`] was called: after an irreversible step its files may be
/// the only copies of a secret, and from then on nothing removes them.
pub struct OutputDir {
    path: PathBuf,
    remove_on_drop: bool,
}

impl OutputDir {
    /// Creates `path` (not its parents) with mode 0700 whatever the umask. A name that
    /// is taken, even by a dangling symlink, is refused.
    pub fn reserve(path: &Path, what: &str) -> Result<OutputDir, OutputError> {
        let err = || OutputError::io(what, path);
        fs::DirBuilder::new().mode(0o700).create(path).map_err(err())?;
        let dir = OutputDir {
            path: path.to_path_buf(),
            remove_on_drop: true,
        };
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(err())?;
        sync_dir(parent_of(path)).map_err(err())?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on the directory survives whatever happens to this value.
    pub fn keep_on_drop(&mut self) {
        self.remove_on_drop = false;
    }

    /// Writes a new file in the directory (see [`create_new`]) and syncs the directory.
    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
        let path = self.path.join(name);
        create_new(&path, bytes, mode, name)?;
        sync_dir(&self.path).map_err(OutputError::io(name, &path))
    }

    /// Removes a file this directory holds and syncs the directory.
    pub fn remove(&self, name: &str) -> Result<(), OutputError> {
        let path = self.path.join(name);
        fs::remove_file(&path).map_err(OutputError::io(name, &path))?;
        sync_dir(&self.path).map_err(OutputError::io(name, &path))
    }

    /// The names of the files in the directory, sorted.
    pub fn names(&self) -> std::io::Result<Vec<String>> {
        let mut names = fs::read_dir(&self.path)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if self.remove_on_drop {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Whether two output paths name one file: the same name in the same directory (the
/// directories compared after resolving them; the files need not exist yet).
pub fn same_file(a: &Path, b: &Path) -> bool {
    let dir = |p: &Path| std::fs::canonicalize(parent_of(p)).ok();
    a.file_name() == b.file_name() && dir(a).is_some() && dir(a) == dir(b)
}

/// Reads `path` whole, only if it is a regular file: opened without blocking (a FIFO
/// would wait for a writer forever), then checked with fstat before a byte is read.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file (a FIFO, a device or a directory)"));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_regular(path)?).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Whether `path` can be read by users other than its owner (group or others).
pub fn readable_by_others(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

/// Outputs placed together or not at all (`sign --out-dir`): each is written into a
/// staging directory inside the output directory (`.hsm-demo-batch-*`, locked while
/// this process lives), and only [`Batch::place`] moves them to their names, after
/// every one is made and synced. A failure before that removes the staging directory;
/// a failure while placing takes back what was placed. A process killed at any point
/// leaves a staging directory that the next batch into the same directory finds dead
/// (its lock free) and undoes: what it had placed is removed, with a note.
pub struct Batch {
    staging: PathBuf,
    _lock: File,
    placed: bool,
}

const BATCH_PREFIX: &str = ".hsm-demo-batch-";
const PLACING: &str = "placing";
const DONE: &str = "done";

impl Batch {
    /// Undoes dead batches in `dir`, then opens a staging directory; what was undone
    /// comes back as one line each, for the caller to show.
    pub fn new(dir: &Path) -> Result<(Batch, Vec<String>), OutputError> {
        let err = || OutputError::io("output directory", dir);
        let mut notes = Vec::new();
        for entry in fs::read_dir(dir).map_err(err())?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(BATCH_PREFIX) && entry.path().is_dir() {
                notes.extend(undo_dead_batch(dir, &entry.path()));
            }
        }
        let staging = tempfile::Builder::new().prefix(BATCH_PREFIX).tempdir_in(dir).map_err(err())?.keep();
        let lock = File::create(staging.join("lock")).map_err(err())?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).map_err(|e| err()(e.into()))?;
        Ok((Batch { staging, _lock: lock, placed: false }, notes))
    }

    /// Writes output `index` (mode `mode`) into the staging directory.
    pub fn stage(&self, index: usize, bytes: &[u8], mode: u32) -> Result<(), OutputError> {
        let path = self.staging.join(index.to_string());
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&path).map_err(OutputError::io("output", &path))?;
        f.write_all(bytes).map_err(OutputError::io("output", &path))
    }

    /// Moves every staged output `i` to `targets[i]`, none replacing anything: first
    /// the staged files and the list of targets reach the disk, then the renames, then
    /// the directory is synced. If one rename fails, the ones made are taken back.
    pub fn place(mut self, dir: &Path, targets: &[PathBuf]) -> Result<(), OutputError> {
        let list: String = targets.iter().map(|t| format!("{}\n", t.display())).collect();
        let placing = self.staging.join(PLACING);
        fs::write(&placing, list).map_err(OutputError::io("output directory", dir))?;
        sync_filesystem(dir)?;
        for (i, target) in targets.iter().enumerate() {
            if let Err(e) = rename_no_replace(&self.staging.join(i.to_string()), target) {
                for done in &targets[..i] {
                    let _ = fs::remove_file(done);
                }
                return Err(OutputError::io("output", target)(e));
            }
        }
        sync_dir(dir).map_err(OutputError::io("output directory", dir))?;
        self.placed = true;
        // Complete: a kill from here leaves a staging directory that is only removed.
        let _ = fs::write(self.staging.join(DONE), b"");
        let _ = fs::remove_dir_all(&self.staging);
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Undoes the staging directory `staging` of a batch into `dir` if its process is gone
/// (its lock can be taken): removes what it had placed (the targets its list names that
/// its staging no longer holds), then the directory. None when it is alive.
fn undo_dead_batch(dir: &Path, staging: &Path) -> Option<String> {
    if let Ok(lock) = File::open(staging.join("lock")) {
        let free = rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
        if !free {
            return None;
        }
    }
    if staging.join(DONE).exists() {
        let _ = fs::remove_dir_all(staging);
        return None;
    }
    let mut removed = 0;
    let mut listed = 0;
    if let Ok(list) = fs::read_to_string(staging.join(PLACING)) {
        for (i, target) in list.lines().enumerate() {
            listed += 1;
            // Placed: no longer in staging. Its name was free when it was placed.
            if !staging.join(i.to_string()).exists() && fs::remove_file(target).is_ok() {
                removed += 1;
            }
        }
    }
    let _ = fs::remove_dir_all(staging);
    let _ = sync_dir(dir);
    Some(if listed > 0 {
        format!("an interrupted batch into {} had placed {removed} of its {listed} outputs; they were removed, so nothing of it is placed", dir.display())
    } else {
        format!("removed the staging directory of an interrupted batch in {} (nothing of it was placed)", dir.display())
    })
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
    fn a_reserved_dir_is_private_refuses_a_taken_name_and_is_removed_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let reserved = OutputDir::reserve(&path, "--out").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        reserved.write("a", b"x", 0o644).unwrap();
        assert!(reserved.write("a", b"y", 0o644).is_err());
        assert!(matches!(
            OutputDir::reserve(&path, "--out"),
            Err(OutputError::Exists { .. })
        ));
        drop(reserved);
        assert!(!path.exists(), "removed on drop");
        let mut kept = OutputDir::reserve(&path, "--out").unwrap();
        kept.write("share", b"secret", 0o600).unwrap();
        kept.keep_on_drop();
        drop(kept);
        assert_eq!(fs::read(path.join("share")).unwrap(), b"secret");
        // A dangling symlink takes the name too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(OutputDir::reserve(&link, "--out").is_err());
    }
}

