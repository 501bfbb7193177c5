//! A guard for SoftHSM2's file store against interrupted writes. SoftHSM 2.6.1
//! rewrites each token's `token.object` in place on every C_Login (its leading counter
//! moves) and on PIN changes; a kill in that window can leave the file empty or cut,
//! and SoftHSM then no longer lists the token: every key in it is gone, as the keys'
//! object files are encrypted under a key that `token.object` holds (docs/platform.md,
//! "SoftHSM loses a token to a kill").
//!
//! Under the store lock, before the module is loaded, every `token.object` of the
//! store is read: one that is empty, cut or does not parse is put back from hsm-demo's
//! durable copy (temporary file, fsync, rename), with one line saying so and from when.
//! The copy is taken the first time hsm-demo sees a token intact, after a token is
//! initialised, and after each PIN change it makes; a PIN change is marked before it
//! starts and unmarked once its result is copied, so a repair after an interrupted
//! change says that the previous PIN opens the role, not the new one.
//!
//! The copies live outside SoftHSM's token directory (SoftHSM takes every
//! subdirectory of it for a token): `<copies>/<token directory name>/`.
//! Limit: programs that write the store without hsm-demo's lock (pkcs11-tool, the
//! openssl CLI) are not guarded while they run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::output;

/// SoftHSM's vendor attributes of a token file (SoftHSM 2.6.1 `OSAttributes.h`).
const CKA_OS_TOKENSERIAL: u64 = 0x8000_534a;
const CKA_OS_TOKENFLAGS: u64 = 0x8000_534b;
const CKA_OS_SOPIN: u64 = 0x8000_534c;
const CKA_OS_USERPIN: u64 = 0x8000_534d;
/// CKF_USER_PIN_INITIALIZED.
const USER_PIN_INITIALIZED: u64 = 0x8;

/// What a good `token.object` says: its token's serial and its PIN blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFile {
    pub serial: String,
    so_pin: Vec<u8>,
    user_pin: Option<Vec<u8>>,
}

/// Parses SoftHSM 2.6.1's object file: an 8-byte counter, then attributes, each a
/// big-endian 8-byte attribute type, an 8-byte kind (1 bool: one byte; 2 ulong: 8
/// bytes; 3 byte string, 4 mechanism set, 5 attribute map: an 8-byte length and that
/// many bytes), to the end of the file exactly. A token file must carry its serial and
/// SO PIN blob, and its user PIN blob when its flags say the user PIN is set; a file
/// cut at an attribute boundary lacks one of them.
pub fn parse_token_file(bytes: &[u8]) -> Option<TokenFile> {
    fn u64_at(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }
    let mut at = 8;
    u64_at(bytes, 0)?;
    let (mut serial, mut flags, mut so_pin, mut user_pin) = (None, None, None, None);
    while at < bytes.len() {
        let ty = u64_at(bytes, at)?;
        let kind = u64_at(bytes, at + 8)?;
        at += 16;
        let value: &[u8] = match kind {
            1 => {
                at += 1;
                bytes.get(at - 1..at)?
            }
            2 => {
                at += 8;
                bytes.get(at - 8..at)?
            }
            3..=5 => {
                let len = usize::try_from(u64_at(bytes, at)?).ok()?;
                let start = at + 8;
                at = start.checked_add(len)?;
                bytes.get(start..at)?
            }
            _ => return None,
        };
        match ty {
            CKA_OS_TOKENSERIAL => serial = Some(String::from_utf8(value.to_vec()).ok()?),
            CKA_OS_TOKENFLAGS if kind == 2 => flags = Some(u64::from_be_bytes(value.try_into().ok()?)),
            CKA_OS_SOPIN => so_pin = Some(value.to_vec()),
            CKA_OS_USERPIN => user_pin = Some(value.to_vec()),
            _ => {}
        }
    }
    if at != bytes.len() {
        return None;
    }
    let flags = flags?;
    if flags & USER_PIN_INITIALIZED != 0 && user_pin.is_none() {
        return None;
    }
    Some(TokenFile { serial: serial?, so_pin: so_pin?, user_pin })
}

/// A PIN change under way, recorded before it starts.
#[derive(Debug, Serialize, Deserialize)]
struct Change {
    what: String,
    since: String,
}

/// The guard of one SoftHSM file store.
#[derive(Debug, Clone)]
pub struct StoreGuard {
    tokendir: PathBuf,
    copies: PathBuf,
}

const TOKEN_FILE: &str = "token.object";
const COPY: &str = "token.object";
const CHANGE: &str = "pin-change.json";

fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Writes `bytes` to `path` durably: a temporary file in the same directory, fsync,
/// rename over, fsync of the directory.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = output::parent_of(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    output::sync_dir(dir)
}

impl StoreGuard {
    /// The guard of the store `softhsm_conf` names (file backend), keeping its copies
    /// under `copies`; None when the config names no token directory.
    pub fn new(softhsm_conf: &Path, copies: &Path) -> Option<StoreGuard> {
        let text = std::fs::read_to_string(softhsm_conf).ok()?;
        let mut tokendir = None;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else { continue };
            match key.trim() {
                "directories.tokendir" => tokendir = Some(PathBuf::from(value.trim())),
                "objectstore.backend" if value.trim() != "file" => return None,
                _ => {}
            }
        }
        let tokendir = tokendir?;
        let key = crate::lock::store_key(&tokendir);
        Some(StoreGuard { copies: copies.join(key), tokendir })
    }

    /// The token directories (SoftHSM's: every subdirectory of the tokendir).
    fn token_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.tokendir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    }

    fn copy_dir(&self, token_dir: &Path) -> PathBuf {
        self.copies.join(token_dir.file_name().unwrap_or_default())
    }

    /// Whether any token file needs a repair (empty, cut, unparseable, unreadable).
    pub fn needs_repair(&self) -> bool {
        self.token_dirs().iter().any(|d| {
            std::fs::read(d.join(TOKEN_FILE)).is_ok_and(|b| parse_token_file(&b).is_none())
        })
    }

    /// Puts back every broken token file from its copy (call with the store locked
    /// exclusively), takes a first copy of every intact token that has none, and
    /// resolves a PIN change whose outcome is now on disk. Returns one line per repair,
    /// and one per broken token file it cannot put back (SoftHSM then lists the other
    /// tokens; the line says not to initialise a new token over it).
    pub fn check(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for dir in self.token_dirs() {
            let file = dir.join(TOKEN_FILE);
            if !file.exists() {
                continue;
            }
            let copy_dir = self.copy_dir(&dir);
            let copy = copy_dir.join(COPY);
            let change: Option<Change> = std::fs::read(copy_dir.join(CHANGE)).ok().and_then(|b| serde_json::from_slice(&b).ok());
            match std::fs::read(&file) {
                Ok(bytes) if parse_token_file(&bytes).is_some() => {
                    let current = parse_token_file(&bytes).expect("parsed");
                    let kept = std::fs::read(&copy).ok().and_then(|b| parse_token_file(&b));
                    // The file is the truth when it is whole: keep a copy of it when the
                    // PINs moved (a change that completed) or there is none yet.
                    if kept.as_ref() != Some(&current) {
                        if let Err(e) = std::fs::create_dir_all(&copy_dir).and_then(|()| write_durably(&copy, &bytes)) {
                            notes.push(format!("cannot keep a copy of {}: {}", file.display(), output::reason(&e)));
                        }
                    }
                    if change.is_some() {
                        let _ = std::fs::remove_file(copy_dir.join(CHANGE));
                    }
                }
                Err(e) => {
                    // Not an interrupted write: named, never replaced.
                    notes.push(format!(
                        "the token file {} cannot be read ({}): SoftHSM will not list that token until it can",
                        file.display(),
                        output::reason(&e)
                    ));
                }
                Ok(bytes) => {
                    let why = match bytes.len() {
                        0 => "is empty".to_string(),
                        n => format!("is cut or damaged ({n} bytes that do not parse)"),
                    };
                    let Some(saved) = std::fs::read(&copy).ok().filter(|b| parse_token_file(b).is_some()) else {
                        notes.push(format!(
                            "the token file {} {why}, and hsm-demo holds no copy of it: that token cannot be put back (do not initialise a new token over it; restore the file from a backup of the store)",
                            file.display()
                        ));
                        continue;
                    };
                    let when = std::fs::metadata(&copy)
                        .and_then(|m| m.modified())
                        .ok()
                        .map(|t| {
                            let t: time::OffsetDateTime = t.into();
                            t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
                        })
                        .unwrap_or_default();
                    if let Err(e) = write_durably(&file, &saved) {
                        notes.push(format!("the token file {} {why}, and putting it back failed: {}", file.display(), output::reason(&e)));
                        continue;
                    }
                    let serial = parse_token_file(&saved).map(|t| t.serial).unwrap_or_default();
                    let mut note = format!(
                        "the token file of token serial {serial} {why} (an interrupted write); it was put back from hsm-demo's copy of {when}"
                    );
                    match change {
                        Some(c) => {
                            note.push_str(&format!(
                                ": the {} begun {} did not complete, so the PIN in force is the previous one (not the new PIN, nor shares made for it)",
                                c.what, c.since
                            ));
                            let _ = std::fs::remove_file(copy_dir.join(CHANGE));
                        }
                        None => note.push_str(" (the same PINs open it)"),
                    }
                    notes.push(note);
                }
            }
        }
        notes
    }

    /// The token directory of token `serial`.
    fn dir_of(&self, serial: &str) -> Option<PathBuf> {
        self.token_dirs().into_iter().find(|d| {
            std::fs::read(d.join(TOKEN_FILE))
                .ok()
                .or_else(|| std::fs::read(self.copy_dir(d).join(COPY)).ok())
                .and_then(|b| parse_token_file(&b))
                .is_some_and(|t| t.serial == serial)
        })
    }

    /// Records that `what` (a PIN change) begins on token `serial`.
    pub fn change_begins(&self, serial: &str, what: &str) -> std::io::Result<()> {
        let Some(dir) = self.dir_of(serial) else { return Ok(()) };
        let copy_dir = self.copy_dir(&dir);
        std::fs::create_dir_all(&copy_dir)?;
        let change = Change { what: what.to_string(), since: now_text() };
        write_durably(&copy_dir.join(CHANGE), &serde_json::to_vec(&change).map_err(std::io::Error::other)?)
    }

    /// A change on token `serial` returned (whatever its result): the token file as it
    /// is now becomes the copy, and the mark goes, if the file is whole; a file left
    /// broken keeps the mark for the repair to report.
    pub fn change_done(&self, serial: &str) -> std::io::Result<()> {
        let Some(dir) = self.dir_of(serial) else { return Ok(()) };
        let bytes = std::fs::read(dir.join(TOKEN_FILE))?;
        if parse_token_file(&bytes).is_none() {
            return Ok(());
        }
        let copy_dir = self.copy_dir(&dir);
        std::fs::create_dir_all(&copy_dir)?;
        write_durably(&copy_dir.join(COPY), &bytes)?;
        match std::fs::remove_file(copy_dir.join(CHANGE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The token files of the store `softhsm_conf` names that are empty, cut or unreadable.
pub fn unreadable_token_files(softhsm_conf: &Path) -> Vec<PathBuf> {
    let Some(guard) = StoreGuard::new(softhsm_conf, Path::new("/")) else { return Vec::new() };
    guard
        .token_dirs()
        .into_iter()
        .map(|d| d.join(TOKEN_FILE))
        .filter(|f| f.exists() && std::fs::read(f).ok().and_then(|b| parse_token_file(&b)).is_none())
        .collect()
}

/// Runs `change` (a PIN change or a token initialisation on token `serial`) marked in
/// `guard`, when there is one: refused, with nothing changed, if the mark cannot be
/// written; the token file copied after it returns, whatever it returned.
pub fn guarded<T>(guard: Option<&StoreGuard>, serial: &str, what: &str, change: impl FnOnce() -> T) -> Result<T, super::TokenError> {
    if let Some(g) = guard {
        g.change_begins(serial, what)
            .map_err(|e| super::TokenError::Store(format!("cannot record the {what} before making it: {}; nothing was changed", output::reason(&e))))?;
    }
    let result = change();
    if let Some(g) = guard {
        if let Err(e) = g.change_done(serial) {
            crate::console::note(&format!("the {what} was made, but hsm-demo could not copy the token file: {}", output::reason(&e)));
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u64, kind: u64, value: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend(kind.to_be_bytes());
        if kind == 3 {
            v.extend((value.len() as u64).to_be_bytes());
        }
        v.extend(value);
        v
    }

    #[test]
    fn token_files_parse_whole_and_not_cut() {
        let mut f = 9u64.to_be_bytes().to_vec();
        f.extend(attr(0x8000_5349, 3, &[b' '; 32]));
        f.extend(attr(CKA_OS_TOKENSERIAL, 3, b"ad8cf064f3faaf44"));
        f.extend(attr(CKA_OS_TOKENFLAGS, 2, &0x42du64.to_be_bytes()));
        f.extend(attr(CKA_OS_SOPIN, 3, &[1; 72]));
        f.extend(attr(CKA_OS_USERPIN, 3, &[2; 72]));
        let t = parse_token_file(&f).unwrap();
        assert_eq!(t.serial, "ad8cf064f3faaf44");
        for cut in [0, 7, 8, 100, f.len() - 1] {
            assert!(parse_token_file(&f[..cut]).is_none(), "cut at {cut}");
        }
        // Cut exactly before the user PIN (an attribute boundary): the flags say it is set.
        let boundary = f.len() - (16 + 8 + 72);
        assert!(parse_token_file(&f[..boundary]).is_none());
    }
}

