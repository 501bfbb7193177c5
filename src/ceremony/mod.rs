//! The offline-root key ceremony: key generation in the token, the root certificate
//! made by OpenSSL with the token key, custody proof, a real M-of-N quorum over the
//! SO PIN, and a signed transcript. `steps` makes each step's data; this file runs
//! them in order with the ceremony's rules, and records the transcript.
//!
//! The rules (write-ahead): the output directory is reserved, with an INCOMPLETE
//! marker, before Step 1. Until the SO PIN may have changed, any failure destroys the
//! new key pair and removes the directory. The share files are durable in the output
//! directory before C_SetPIN is attempted, and from that attempt on nothing removes
//! them; an outcome that is not definitely "unchanged" counts as "changed". At the end
//! a fresh process proves the old SO PIN refused and the new one accepted, and only
//! then is the INCOMPLETE marker removed.

pub mod backup;
pub mod so_step;
mod steps;
mod prepare;
mod record;
pub mod redeal;
pub mod reset;
mod transcript;
pub mod verify;

use std::path::PathBuf;

use cryptoki::types::AuthPin;
use crate::bridge::sha256;

use crate::bridge::BridgeError;
use crate::ca::RootProfile;
use crate::hsm::{Hsm, SigningKey};
use crate::output::OutputDir;
use crate::quorum::{Binding, Purpose, Quorum};
use crate::child::Launcher;
use crate::token::{Algorithm, Custody};

pub use prepare::{incomplete_near, out_dir, preflight, reserve, reserve_marked};
pub use steps::SecretShape;
pub use transcript::utc_stamp;
use transcript::{utc_now, Transcript};

/// The longest validity accepted: 25 years.
pub const MAX_DAYS: u32 = 25 * 365 + 6;

/// The marker an output directory holds until the ceremony completed.
pub const INCOMPLETE: &str = "INCOMPLETE";

pub struct Options {
    pub label: String,
    pub algo: Algorithm,
    /// The activation quorum over the user PIN, and the bytes of its secret.
    pub activation: Option<(Quorum, steps::SecretShape)>,
    pub profile: RootProfile,
    /// What to call the profile in the transcript.
    pub profile_name: String,
    /// The quorum, and the bytes of randomness its secret gets.
    pub quorum: Option<(Quorum, steps::SecretShape)>,
    /// The backup quorum over the root's wrap key (`--backup-quorum`).
    pub backup: Option<Quorum>,
    pub days: u32,
}

/// Runs the ceremony with the user logged in, writing into `out` (reserved by
/// [`reserve`]) and handing every printed line to `print`.
pub fn run(
    hsm: &Hsm,
    launcher: &Launcher,
    so_pin: Option<&AuthPin>,
    opts: &Options,
    mut out: OutputDir,
    print: &mut dyn FnMut(&str),
) -> anyhow::Result<PathBuf> {
    let mut t = Transcript::new(print);
    header(hsm, opts, &mut t);

    let key = steps::generate_key(hsm, opts.algo, &opts.label, opts.backup.is_some())?;
    t.step(&format!(
        "[Step 1] Key pair generated: label={}, algo={}",
        opts.label,
        opts.algo.step_name()
    ));
    t.detail(&format!("id:       {}", hex::encode(&key.pair.private.id)));
    t.detail(&format!("uri:      {}", key.pair.private.uri));
    t.detail(if opts.backup.is_some() {
        "template: CKA_TOKEN=true CKA_PRIVATE=true CKA_SENSITIVE=true CKA_EXTRACTABLE=true CKA_WRAP_WITH_TRUSTED=true CKA_SIGN=true (extractable only wrapped by a trusted key, for the backup)"
    } else {
        "template: CKA_TOKEN=true CKA_PRIVATE=true CKA_SENSITIVE=true CKA_EXTRACTABLE=false CKA_SIGN=true"
    });
    t.step(&format!(
        "[Step 2] Public key (hex): {}",
        hex::encode(&key.shown)
    ));
    t.detail(&format!("SPKI SHA-256: {}", colon_hex(&key.spki_sha256)));

    // Until the SO PIN may change: a failure destroys the key pair, and dropping `out`
    // removes the directory.
    let undo = |e: anyhow::Error| {
        let _ = hsm.session().destroy_key_pair(&key.pair);
        e.context("the ceremony stopped; the new key pair was destroyed and nothing was written")
    };
    let signing = hsm.load_key(key.pair.private.clone()).map_err(undo)?;
    let cert_sha256 = root_certificate(hsm, &signing, opts, &out, &mut t).map_err(undo)?;

    let ceremony_id = hex::encode(hsm.session().random(16).map_err(|e| undo(e.into()))?);
    let binding = Binding {
        ceremony_id,
        token_label: hsm.token().label.clone(),
        token_serial: hsm.token().serial.clone(),
        root_cert_sha256: hex::encode(cert_sha256),
    };
    if let Some(q) = opts.backup {
        let so = so_pin.ok_or_else(|| undo(anyhow::anyhow!("a backup needs the SO PIN")))?;
        let made = backup::backup_root(hsm, launcher, so, (&key.pair.private, &key.public, opts.algo), q, &binding, &mut out).map_err(|e| {
            let _ = std::fs::remove_dir_all(out.path());
            undo(e.context("the backup step failed (nothing had changed on the token but the new key)"))
        })?;
        record::backup(&made, &binding, &mut t);
    }
    // Each PIN change is write-ahead (see steps::make_quorum). Once one PIN may have
    // changed, nothing is undone any more: every later failure keeps the directory.
    let mut made: Vec<(steps::QuorumMade, AuthPin)> = Vec::new();
    let plan = [
        (Purpose::SoPin, opts.quorum, so_pin.cloned()),
        (Purpose::Activation, opts.activation, Some(hsm.user_pin().clone())),
    ];
    for (purpose, quorum, old) in plan {
        let (Some(q), Some(old)) = (quorum, old) else {
            if purpose == Purpose::SoPin {
                t.step("[Step 3] No quorum made (--no-quorum): the SO PIN is unchanged, and whoever holds it can reset the user PIN");
            }
            continue;
        };
        let step = match purpose {
            Purpose::SoPin => {
                let apply = steps::set_so_pin(hsm, launcher, &old);
                steps::make_quorum(hsm.session(), purpose, q, binding.clone(), &mut out, apply)
            }
            Purpose::Activation => {
                let apply = steps::set_user_pin(hsm);
                steps::make_quorum(hsm.session(), purpose, q, binding.clone(), &mut out, apply)
            }
            // Not a PIN: made before the PIN changes (steps::backup).
            Purpose::Backup => continue,
        };
        match step {
            Ok(quorum) => {
                record::quorum(&quorum, &mut t);
                made.push((quorum, old));
            }
            Err(steps::QuorumFailure::BeforeChange(e)) if made.is_empty() => {
                // Definitely unchanged, and nothing changed before: the shares open nothing.
                let _ = std::fs::remove_dir_all(out.path());
                return Err(undo(e.context(format!(
                    "the quorum step failed before the {} changed",
                    pin_name(purpose)
                ))));
            }
            Err(steps::QuorumFailure::BeforeChange(e)) => {
                return Err(e.context(format!(
                    "the {} is unchanged, but the SO PIN WAS changed: its custodian shares in {} are its only copy (the directory stays marked {INCOMPLETE})",
                    pin_name(purpose),
                    out.path().display()
                )));
            }
            Err(steps::QuorumFailure::AfterChange(e)) => {
                return Err(e.context(format!(
                    "the {} may have changed: the custodian shares in {} are its only copy (the directory stays marked {INCOMPLETE})",
                    pin_name(purpose),
                    out.path().display()
                )));
            }
        }
    }
    let changed = !made.is_empty();
    finish(hsm, launcher, &signing, &made, &out, &mut t).map_err(|e| {
        if changed {
            e.context(format!(
                "a PIN WAS changed; the custodian shares are kept in {} (marked {INCOMPLETE})",
                out.path().display()
            ))
        } else {
            undo(e)
        }
    })?;
    out.keep_on_drop();
    Ok(out.path().to_path_buf())
}

fn pin_name(purpose: Purpose) -> &'static str {
    purpose.secret_name()
}

fn header(hsm: &Hsm, opts: &Options, t: &mut Transcript) {
    let (token, module) = (hsm.token(), hsm.module().path().display());
    t.record("hsm-demo root CA key ceremony transcript");
    t.record(&format!("tool:     hsm-demo {}", env!("CARGO_PKG_VERSION")));
    t.record(&format!("started:  {}", utc_now()));
    t.record(&format!("module:   {module}"));
    t.record(&format!(
        "token:    label={} serial={} model={} manufacturer={}",
        token.label, token.serial, token.model, token.manufacturer
    ));
    t.record(&format!(
        "profile:  {} (sha256 {})",
        opts.profile_name,
        hex::encode(opts.profile.sha256)
    ));
    match opts.quorum {
        Some((q, _)) => t.record(&format!("quorum:   {q} over the SO PIN (share-K-of-N.json)")),
        None => t.record("quorum:   none over the SO PIN (--no-quorum)"),
    }
    match opts.activation {
        Some((q, _)) => t.record(&format!(
            "activation: {q} over the user PIN (activation-share-K-of-N.json): every use of the root key needs {} custodians",
            q.threshold
        )),
        None => t.record("activation: the user PIN, unchanged (no --activation-quorum)"),
    }
    t.record("");
    t.print("=== ROOT CA KEY CEREMONY ===");
    t.print(&format!(
        "Token '{}' (serial {}) in {module}",
        token.label, token.serial
    ));
    t.print("");
}

/// The root certificate, recorded, and written with the public key into `out`.
/// Returns the certificate's SHA-256.
fn root_certificate(
    hsm: &Hsm,
    signing: &SigningKey<'_>,
    opts: &Options,
    out: &OutputDir,
    t: &mut Transcript,
) -> anyhow::Result<[u8; 32]> {
    let root = steps::root_certificate(hsm, signing, &opts.profile, opts.days)?;
    let subject = opts
        .profile
        .subject
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    t.step(&format!(
        "[Root CA] Self-signed certificate made by OpenSSL from {}, signed in the token",
        opts.profile_name
    ));
    t.detail(&format!("subject:  {subject}"));
    t.detail(&format!("serial:   {}", hex::encode(&root.serial)));
    t.detail(&format!(
        "validity: {} to {} ({} days)",
        root.cert.not_before(),
        root.cert.not_after(),
        opts.days
    ));
    t.detail(&format!("SHA-256 fingerprint: {}", colon_hex(&root.sha256)));
    t.detail(&format!("checks:   {}", root.checks.join(", ")));
    t.detail(&format!("custody:  {}", describe_custody(&root.custody)));
    let pem = root
        .cert
        .to_pem()
        .map_err(BridgeError::openssl("encode the certificate"))?;
    let pub_pem = signing
        .public()
        .public_key_to_pem()
        .map_err(BridgeError::openssl("encode the public key"))?;
    out.write("root-ca.pem", &pem, 0o644)?;
    out.write("root-ca.pub.pem", &pub_pem, 0o644)?;
    // Beside its key in the token, for applications that find it by URI.
    match hsm.store_certificate(signing.object(), &root.cert) {
        Ok(crate::token::cert::Stored::New(uri) | crate::token::cert::Stored::AlreadyThere(uri)) => t.detail(&format!("in token: {uri} (CKO_CERTIFICATE, public)")),
        Err(e) => t.detail(&format!("in token: not stored, the module refused a certificate object ({e:#})")),
    }
    Ok(root.sha256)
}

/// Step 4: the final proof (a fresh process: old SO PIN refused, new one accepted),
/// the hashes of every output, the transcript and its signature by the root key, and
/// last the INCOMPLETE marker removed.
fn finish(
    hsm: &Hsm,
    launcher: &Launcher,
    key: &SigningKey<'_>,
    made: &[(steps::QuorumMade, AuthPin)],
    out: &OutputDir,
    t: &mut Transcript,
) -> anyhow::Result<()> {
    let serial = hsm.token().serial.as_str();
    for (quorum, old) in made {
        let Some(role) = quorum.purpose.role() else { continue };
        so_step::prove_pin(launcher, serial, role, &quorum.new_pin, old).map_err(|why| {
            anyhow::anyhow!(
                "the final check failed: {why}; the custodians hold shares of the {} that was set, which the token does not accept now",
                pin_name(quorum.purpose)
            )
        })?;
    }
    t.step("[Step 4] Ceremony complete. Store HSM in vault.");
    for (quorum, _) in made {
        t.detail(&format!(
            "final check: a fresh process found the old {} refused and the shares' PIN accepted",
            pin_name(quorum.purpose)
        ));
    }
    seal(key, out, "the root key", "root-ca.pub.pem", t)
}

/// The end of a transcript: the SHA-256 of every file in `out`, the time, and the
/// signature by `key` (`who`, whose public key `out` holds as `public`); then
/// transcript.txt and transcript.sig written, and only then the INCOMPLETE marker
/// removed. The output paths are printed.
fn seal(key: &SigningKey<'_>, out: &OutputDir, who: &str, public: &str, t: &mut Transcript) -> anyhow::Result<()> {
    let names: Vec<String> = out
        .names()?
        .into_iter()
        .filter(|n| n != INCOMPLETE)
        .collect();
    t.record("");
    t.record("files (SHA-256):");
    for name in &names {
        let digest = sha256(&std::fs::read(out.path().join(name))?);
        t.record(&format!("  {}  {name}", hex::encode(digest)));
    }
    t.record(&format!("finished: {}", utc_now()));
    let scheme = key.scheme(None, None)?;
    t.record(&format!("signature: transcript.sig, by {who} ({}); check with", scheme.describe()));
    t.record(&format!("  {}", transcript_check(&scheme, public)));
    let text = t.text().to_string();
    let sig = key.sign(scheme, |sink| Ok(sink(text.as_bytes())?))?;
    out.write("transcript.txt", text.as_bytes(), 0o644)?;
    out.write("transcript.sig", &sig, 0o644)?;
    out.remove(INCOMPLETE)?;
    for name in names
        .iter()
        .map(String::as_str)
        .chain(["transcript.txt", "transcript.sig"])
    {
        t.print(&format!("         {}", out.path().join(name).display()));
    }
    Ok(())
}

/// The openssl command that checks the transcript's signature.
fn transcript_check(scheme: &crate::bridge::Scheme, public: &str) -> String {
    match scheme.digest() {
        Some(d) => format!(
            "openssl dgst {} -verify {public} -signature transcript.sig transcript.txt",
            d.flag()
        ),
        None => format!("openssl pkeyutl -verify -pubin -inkey {public} -rawin -in transcript.txt -sigfile transcript.sig"),
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn describe_custody(c: &Custody) -> String {
    let mut text = format!(
        "read back CKA_SENSITIVE={} CKA_EXTRACTABLE={} CKA_ALWAYS_SENSITIVE={} CKA_NEVER_EXTRACTABLE={} CKA_LOCAL={}",
        c.sensitive, c.extractable, c.always_sensitive, c.never_extractable, c.local
    );
    if c.trusted_wrap_only() {
        text.push_str(&format!(" CKA_WRAP_WITH_TRUSTED=true: {}", c.describe()));
    }
    text
}
