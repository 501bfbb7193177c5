//! Input and output shared by the commands: data to sign, signature bytes, files that
//! are written exclusively and atomically.

use std::fs::File;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use crate::bridge::BridgeError;
use crate::cli::DataArgs;
use crate::error::usage;

/// The data of --data or --in, opened before any token work so a missing file fails
/// fast with exit 2.
pub enum Input {
    Data(String),
    File(PathBuf, File),
}

impl Input {
    pub fn open(args: &DataArgs) -> anyhow::Result<Input> {
        match (&args.data, &args.input) {
            (Some(d), None) => Ok(Input::Data(d.clone())),
            (None, Some(p)) => {
                let f = File::open(p).map_err(|e| {
                    usage(format!(
                        "cannot read --in {}: {}",
                        p.display(),
                        io_reason(&e)
                    ))
                })?;
                if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                    return Err(usage(format!("--in {} is a directory", p.display())));
                }
                Ok(Input::File(p.clone(), f))
            }
            _ => Err(usage("give exactly one of --data STR or --in FILE")),
        }
    }

    /// Hands the data to `sink` in chunks.
    pub fn feed(
        &mut self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), BridgeError>,
    ) -> anyhow::Result<()> {
        match self {
            Input::Data(d) => sink(d.as_bytes())?,
            Input::File(path, f) => {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = f.read(&mut buf).map_err(|e| {
                        usage(format!(
                            "cannot read --in {}: {}",
                            path.display(),
                            io_reason(&e)
                        ))
                    })?;
                    if n == 0 {
                        break;
                    }
                    sink(&buf[..n])?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a signature from --sig-file: binary DER, binary r||s, or hex text.
pub fn read_signature_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        usage(format!(
            "cannot read --sig-file {}: {}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim();
    let looks_hex = !trimmed.is_empty()
        && trimmed.chars().all(|c| c.is_ascii_hexdigit())
        && bytes.iter().all(|b| b.is_ascii());
    if looks_hex {
        return super::parse_hex("--sig-file", trimmed);
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` only if nothing is there: written to a temporary file in
/// the same directory, then linked into place without clobbering.
pub fn write_new_file(path: &Path, bytes: &[u8], what: &str) -> anyhow::Result<()> {
    if path.exists() {
        return Err(usage(format!(
            "{what} {} already exists; refusing to overwrite",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        usage(format!(
            "cannot write {what} in {}: {}",
            dir.display(),
            io_reason(&e)
        ))
    })?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| {
        usage(format!(
            "cannot write {what} {}: {}",
            path.display(),
            io_reason(&e.error)
        ))
    })?;
    Ok(())
}

/// "No such file or directory" without the "(os error 2)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
