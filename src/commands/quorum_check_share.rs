//! `quorum-check-share`: one custodian checks their own share file alone: no token, no
//! PIN, no other share, nothing recombined.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bridge::sha256;
use crate::ceremony::verify;
use crate::console::{self, outln};
use crate::error::EvidenceInvalid;
use crate::quorum;

use super::print_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The share file to check
    file: PathBuf,

    /// The ceremony's output directory: the file's SHA-256 must be the one its signed
    /// transcript lists, and its set one the transcript records
    #[arg(long, value_name = "DIR")]
    ceremony_dir: Option<PathBuf>,

    /// Print the findings as JSON (also when the check fails; the exit status is 1 then)
    #[arg(long)]
    json: bool,
}

/// `quorum-check-share --json`.
#[derive(Serialize, Default)]
struct Finding {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    share: Option<Share>,
    /// "listed" when the ceremony's signed transcript lists this file with this SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    transcript: Option<String>,
}

#[derive(Serialize)]
struct Share {
    purpose: String,
    secret: &'static str,
    set_id: String,
    index: u8,
    threshold: u8,
    shares: u8,
    ceremony_id: String,
    token_label: String,
    token_serial: String,
    root_cert_sha256: String,
}

pub fn run(settings: &crate::settings::Settings, a: Args) -> anyhow::Result<()> {
    let mut f = Finding {
        file: a.file.display().to_string(),
        ..Default::default()
    };
    let result = check(&a.file, a.ceremony_dir.as_deref(), settings.data_dir.as_deref(), &mut f);
    f.ok = result.is_ok();
    f.reason = result.as_ref().err().cloned();
    if a.json {
        print_json(&f)?;
    } else {
        print_text(&f)?;
    }
    result.map_err(|why| EvidenceInvalid(format!("share file {}: {why}", f.file)).into())
}

fn check(path: &Path, ceremony_dir: Option<&Path>, data_dir: Option<&Path>, f: &mut Finding) -> Result<(), String> {
    let bytes = crate::output::read_regular(path).map_err(|e| crate::output::reason(&e))?;
    f.sha256 = hex::encode(sha256(&bytes));
    drop(zeroize::Zeroizing::new(bytes));
    let (file, purpose, _share) = quorum::check_file(path).map_err(|e| match e {
        quorum::QuorumError::Unreadable { reason, .. } => reason,
        quorum::QuorumError::BadShare { index, .. } => {
            format!("share {index} is corrupted or altered: it does not match its check value")
        }
        other => other.to_string(),
    })?;
    let set_id = file.set_id();
    f.share = Some(Share {
        purpose: file.purpose.clone(),
        secret: purpose.secret_name(),
        set_id: set_id.clone(),
        index: file.index,
        threshold: file.threshold,
        shares: file.shares,
        ceremony_id: file.binding.ceremony_id.clone(),
        token_label: file.binding.token_label.clone(),
        token_serial: file.binding.token_serial.clone(),
        root_cert_sha256: file.binding.root_cert_sha256.clone(),
    });
    if let Some(r) = quorum::retired::of(data_dir, &set_id) {
        return Err(format!(
            "belongs to share set {set_id}, replaced on {} by set {} (re-deal record {}); it no longer opens the role",
            r.when, r.new, r.record
        ));
    }
    let Some(dir) = ceremony_dir else { return Ok(()) };
    let (listed, sets) = verify::signed_listing(dir).map_err(|why| format!("the ceremony directory {}: {why}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !sets.is_empty() && !sets.contains(&set_id) {
        return Err(format!(
            "belongs to share set {set_id}; the transcript of {} records set(s) {}",
            dir.display(),
            sets.join(", ")
        ));
    }
    match listed.get(&name) {
        None => Err(format!("the transcript of {} lists no file named {name}", dir.display())),
        Some(d) if *d != f.sha256 => Err(format!(
            "its SHA-256 {} is not the {d} the transcript of {} lists for {name}",
            f.sha256,
            dir.display()
        )),
        Some(_) => {
            f.transcript = Some("listed".into());
            Ok(())
        }
    }
}

fn print_text(f: &Finding) -> anyhow::Result<()> {
    outln!("Share file {}", console::escape(&f.file))?;
    if !f.sha256.is_empty() {
        outln!("  SHA-256:     {}", f.sha256)?;
    }
    if let Some(s) = &f.share {
        outln!("  holds:       share {} of {} of the {} ({}-of-{})", s.index, s.shares, s.secret, s.threshold, s.shares)?;
        outln!("  share set:   {}", s.set_id)?;
        outln!("  ceremony:    {}", s.ceremony_id)?;
        outln!("  token:       '{}' (serial {})", s.token_label, s.token_serial)?;
        outln!("  root cert:   SHA-256 {}", s.root_cert_sha256)?;
        outln!("  check value: the share matches its entry in the set's check list")?;
    }
    if f.transcript.is_some() {
        outln!("  transcript:  listed with this SHA-256 in the signed transcript")?;
    }
    if f.ok {
        outln!("Share check holds; nothing was recombined and no token was used")?;
    }
    Ok(())
}
