//! Share sets that a re-deal replaced, recorded on this host so that a share of a
//! retired set is refused by name before any login (a failed login counts towards the
//! token's lockout). The record is `retired-share-sets` in the data directory
//! (`$XDG_DATA_HOME/hsm-demo`): one JSON object per line, appended and synced. The
//! re-deal's signed transcript is the portable record of the same fact.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{check_file, QuorumError};

pub const FILE: &str = "retired-share-sets";

/// One re-deal: set `old` replaced by set `new`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retirement {
    pub old: String,
    pub new: String,
    /// UTC, RFC 3339.
    pub when: String,
    /// The re-deal's output directory.
    pub record: String,
}

/// Appends `r` to the record under `data_dir` (created if missing) and syncs it.
pub fn record(data_dir: &Path, r: &Retirement) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join(FILE))?;
    f.write_all(line.as_bytes())?;
    f.sync_all()?;
    crate::output::sync_dir(data_dir)
}

/// Every retirement recorded under `data_dir` (none when there is no record; lines
/// that do not parse are skipped: the record only ever refuses).
pub fn all(data_dir: Option<&Path>) -> Vec<Retirement> {
    let Some(dir) = data_dir else { return Vec::new() };
    std::fs::read_to_string(dir.join(FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The retirement of `set`, if one is recorded.
pub fn of(data_dir: Option<&Path>, set: &str) -> Option<Retirement> {
    all(data_dir).into_iter().find(|r| r.old == set)
}

/// Refuses the first of `paths` whose set was retired; files that do not read are left
/// to the recombination, which names them.
pub fn refuse_retired(data_dir: Option<&Path>, paths: &[PathBuf]) -> Result<(), QuorumError> {
    let retired = all(data_dir);
    if retired.is_empty() {
        return Ok(());
    }
    for p in paths {
        let Ok((f, _, _)) = check_file(p) else { continue };
        let set = f.set_id();
        if let Some(r) = retired.iter().find(|r| r.old == set) {
            return Err(QuorumError::Retired {
                path: p.display().to_string(),
                set,
                new: r.new.clone(),
                when: r.when.clone(),
                record: r.record.clone(),
            });
        }
    }
    Ok(())
}
