//! Input shared by the commands: the data to sign or verify, signature bytes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bridge::BridgeError;
use crate::error::usage;
use crate::output::reason as io_reason;

use super::DataArgs;

/// The data of --data or --in (`--in -`: standard input), opened before any token work
/// so a missing file fails fast with exit 2. Read in chunks: any size, constant memory.
pub enum Input {
    Data(String),
    File(PathBuf, Box<dyn Read>),
}

impl Input {
    pub fn open(args: &DataArgs) -> anyhow::Result<Input> {
        match (&args.data, &args.input) {
            (Some(d), None) => Ok(Input::Data(d.clone())),
            (None, Some(p)) if p.as_os_str() == "-" => {
                Ok(Input::File(p.clone(), Box::new(std::io::stdin())))
            }
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
                Ok(Input::File(p.clone(), Box::new(f)))
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
