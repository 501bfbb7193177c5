//! Checking a ceremony's outputs with no token and no PIN: the transcript's signature
//! under the root public key, the root certificate (self-signed, its key the one in
//! root-ca.pub.pem), every file hash the transcript lists, and every share file's
//! structure and check values against the rest of its set (nothing is recombined).

use std::collections::BTreeMap;
use std::path::Path;

use crate::bridge::sha256;

use crate::bridge;
use crate::quorum::{self, Purpose};

use super::INCOMPLETE;

/// One check on one file.
pub struct Finding {
    pub file: String,
    pub ok: bool,
    pub what: String,
}

/// A check that does not hold, and why.
#[derive(Clone)]
struct Failed(String);

impl From<String> for Failed {
    fn from(why: String) -> Self {
        Failed(why)
    }
}

impl From<&str> for Failed {
    fn from(why: &str) -> Self {
        Failed(why.to_string())
    }
}

/// What `verify` found: a finding per check, and files the transcript does not list
/// (a CA directory gains records later: reported, not an error).
#[derive(Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub unlisted: Vec<String>,
    /// Share files whose set a re-deal retired (this host's record): the evidence
    /// holds, the shares no longer open the role. File, then what replaced the set.
    pub retired: Vec<(String, String)>,
}

impl Report {
    fn add(&mut self, file: &str, result: Result<String, Failed>) {
        let (ok, what) = match result {
            Ok(what) => (true, what),
            Err(Failed(what)) => (false, what),
        };
        self.findings.push(Finding {
            file: file.to_string(),
            ok,
            what,
        });
    }

    /// The files with a failed check, each once, in order.
    pub fn failed(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in self.findings.iter().filter(|f| !f.ok) {
            if !out.contains(&f.file.as_str()) {
                out.push(&f.file);
            }
        }
        out
    }
}

/// A file of the ceremony directory: a regular file of the directory itself. A symbolic
/// link is a finding (the ceremony wrote regular files; a link can point at anything
/// outside the evidence), and a FIFO is refused without waiting on it.
fn read(dir: &Path, name: &str) -> Result<Vec<u8>, Failed> {
    let path = dir.join(name);
    if let Ok(target) = std::fs::read_link(&path) {
        return Err(Failed(format!(
            "is a symbolic link (to {}), not the file the ceremony wrote",
            crate::console::escape(&target.display().to_string())
        )));
    }
    crate::output::read_regular(&path).map_err(|e| Failed(format!("cannot be read: {}", crate::output::reason(&e))))
}

/// The transcript's "files (SHA-256):" list: name -> hex digest.
fn listed_files(transcript: &str) -> BTreeMap<String, String> {
    transcript
        .lines()
        .skip_while(|l| *l != "files (SHA-256):")
        .skip(1)
        .map_while(|l| {
            let (digest, name) = l.trim_start().split_once("  ")?;
            (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (name.to_string(), digest.to_string()))
        })
        .collect()
}

/// Whether `sig` over `text` verifies under `public`.
fn signed_by(public: &bridge::PKey<bridge::Public>, text: &[u8], sig: &[u8]) -> bool {
    let ok = bridge::Scheme::for_key(public, None, None).ok().and_then(|scheme| {
        let sig = scheme.parse_signature(sig).ok()?;
        bridge::verify(public, scheme, &sig, |sink| Ok(sink(text)?)).ok()
    });
    ok == Some(true)
}

/// A ceremony or re-deal directory whose signed transcript cannot be read or does not
/// verify; the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnsignedListing(String);

/// File name -> SHA-256 as a transcript lists them, and the share set ids it records.
pub type Listing = (BTreeMap<String, String>, Vec<String>);

/// What a ceremony directory's signed transcript lists: file name -> SHA-256, and
/// the share set ids it records. Err names what does not hold (no transcript, or one
/// whose signature does not verify under root-ca.pub.pem, or a re-deal's
/// transcript-signer.pub.pem).
pub fn signed_listing(dir: &Path) -> Result<Listing, UnsignedListing> {
    let why = |file: &str, e: Failed| UnsignedListing(format!("{file}: {}", e.0));
    // A ceremony's transcript is signed by its root key; a re-deal's by the key it names.
    let signer = [super::redeal::SIGNER_PEM, "root-ca.pub.pem"]
        .into_iter()
        .find(|n| dir.join(n).exists())
        .unwrap_or("root-ca.pub.pem");
    let pem = read(dir, signer).map_err(|e| why(signer, e))?;
    let public = bridge::public_key_from_pem(&pem).ok_or_else(|| UnsignedListing(format!("{signer}: not a PEM public key")))?;
    let text = read(dir, "transcript.txt").map_err(|e| why("transcript.txt", e))?;
    let sig = read(dir, "transcript.sig").map_err(|e| why("transcript.sig", e))?;
    if !signed_by(&public, &text, &sig) {
        return Err(UnsignedListing(format!("transcript.txt does not match its signature transcript.sig under {signer}")));
    }
    let text = String::from_utf8_lossy(&text);
    let sets = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("share set id: "))
        .map(str::to_string)
        .collect();
    Ok((listed_files(&text), sets))
}

pub fn verify(dir: &Path, data_dir: Option<&Path>) -> Report {
    let mut r = Report::default();
    if dir.join(INCOMPLETE).exists() {
        r.add(INCOMPLETE, Err("the ceremony did not complete: its share files may hold a PIN in force; keep them".into()));
    }
    let public = read(dir, "root-ca.pub.pem").and_then(|pem| {
        bridge::public_key_from_pem(&pem).ok_or_else(|| Failed::from("not a PEM public key"))
    });
    if let Err(e) = &public {
        r.add("root-ca.pub.pem", Err(e.clone()));
    }
    let transcript = read(dir, "transcript.txt");
    match (&public, &transcript, read(dir, "transcript.sig")) {
        (Ok(public), Ok(text), Ok(sig)) => {
            match signed_by(public, text, &sig) {
                true => r.add(
                    "transcript.txt",
                    Ok("its signature transcript.sig verifies under root-ca.pub.pem".into()),
                ),
                // The text the root key signed is not this one (or the signature was
                // made by another key): name the transcript.
                false => r.add(
                    "transcript.txt",
                    Err("does not match its signature transcript.sig under root-ca.pub.pem".into()),
                ),
            }
        }
        (_, Err(e), _) => r.add("transcript.txt", Err(e.clone())),
        (_, _, Err(e)) => r.add("transcript.sig", Err(e)),
        _ => {}
    }
    let cert = read(dir, "root-ca.pem").and_then(|pem| {
        bridge::certificate_from_pem(&pem).ok_or_else(|| Failed::from("not a PEM certificate"))
    });
    match (&cert, &public) {
        (Ok((cert, _)), Ok(public)) => r.add(
            "root-ca.pem",
            bridge::check_self_signed(cert, public)
                .map(|checks| format!("key = root-ca.pub.pem; {}", checks.join(", ")))
                .map_err(|e| Failed(format!("does not match root-ca.pub.pem: {e}"))),
        ),
        (Err(e), _) => r.add("root-ca.pem", Err(e.clone())),
        _ => {}
    }
    let listed = transcript
        .as_ref()
        .map(|t| listed_files(&String::from_utf8_lossy(t)))
        .unwrap_or_default();
    for (name, digest) in &listed {
        r.add(
            name,
            read(dir, name).and_then(|bytes| {
                if hex::encode(sha256(&bytes)) == *digest {
                    Ok("SHA-256 as the transcript lists it".into())
                } else {
                    Err("its SHA-256 is not the one the transcript lists".into())
                }
            }),
        );
    }
    check_shares(dir, cert.ok().map(|(_, fpr)| fpr), &mut r);
    let retirements = quorum::retired::all(data_dir);
    for name in listed.keys().filter(|n| n.contains("share-")) {
        let Ok((f, _, _)) = quorum::check_file(&dir.join(name)) else { continue };
        if let Some(x) = retirements.iter().find(|x| x.old == f.set_id()) {
            r.retired.push((
                name.clone(),
                format!("share set {} was replaced on {} by set {} (re-deal record {})", x.old, x.when, x.new, x.record),
            ));
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    r.unlisted = names
        .into_iter()
        .filter(|n| !listed.contains_key(n) && !["transcript.txt", "transcript.sig", INCOMPLETE].contains(&n.as_str()))
        .collect();
    r
}

/// Each share file on its own, then each set's files against each other, and every
/// set bound to this root certificate and to one ceremony.
fn check_shares(dir: &Path, cert_sha256: Option<[u8; 32]>, r: &mut Report) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("share-") && n.ends_with(".json"))
        .collect();
    names.sort();
    let mut sets: BTreeMap<&'static str, Vec<(String, quorum::ShareFile)>> = BTreeMap::new();
    let mut ceremony_ids = Vec::new();
    for name in &names {
        if let Ok(target) = std::fs::read_link(dir.join(name)) {
            let target = crate::console::escape(&target.display().to_string());
            r.add(name, Err(Failed(format!("is a symbolic link (to {target}), not the share file the ceremony wrote"))));
            continue;
        }
        match quorum::check_file(&dir.join(name)) {
            Err(e) => r.add(name, Err(e.to_string().into())),
            Ok((f, purpose, _)) => {
                let root = hex::encode(cert_sha256.unwrap_or_default());
                if f.binding.root_cert_sha256 != root {
                    r.add(name, Err("belongs to another root certificate than root-ca.pem".into()));
                    continue;
                }
                ceremony_ids.push(f.binding.ceremony_id.clone());
                let set = match purpose {
                    Purpose::SoPin => "SO PIN",
                    Purpose::Activation => "user PIN (activation)",
                    Purpose::Backup => "backup wrap key",
                };
                sets.entry(set).or_default().push((name.clone(), f));
            }
        }
    }
    ceremony_ids.sort();
    ceremony_ids.dedup();
    for (set, files) in sets {
        match quorum::check_set(&files) {
            Ok(()) => {
                for (name, f) in &files {
                    r.add(
                        name,
                        Ok(format!(
                            "share {} of {} ({}-of-{} over the {set}, set {}): structure and check values agree with the set",
                            f.index,
                            f.shares,
                            f.threshold,
                            f.shares,
                            f.set_id()
                        )),
                    );
                }
            }
            Err(e) => {
                let odd = match &e {
                    quorum::QuorumError::Inconsistent { path, .. } => path.clone(),
                    _ => files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
                };
                r.add(&odd, Err(e.to_string().into()));
            }
        }
    }
    if ceremony_ids.len() > 1 {
        r.add("share files", Err("the share sets name different ceremonies".into()));
    }
}
