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

pub mod so_step;
mod steps;
mod transcript;

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;
use openssl::sha::sha256;

use crate::bridge::{BridgeError, Profile};
use crate::hsm::{Hsm, SigningKey};
use crate::output::OutputDir;
use crate::quorum::{Binding, Quorum};
use crate::settings::Settings;
use crate::token::{Custody, Module, TokenRef};

pub use steps::quorum_secret_len;
pub use transcript::utc_stamp;
use transcript::{utc_now, Transcript};

/// The longest validity accepted: 25 years.
pub const MAX_DAYS: u32 = 25 * 365 + 6;

/// The marker an output directory holds until the ceremony completed.
pub const INCOMPLETE: &str = "INCOMPLETE";

pub struct Options {
    pub label: String,
    pub profile: Profile,
    /// What to call the profile in the transcript.
    pub profile_name: String,
    /// The quorum, and the bytes of randomness its secret gets.
    pub quorum: Option<(Quorum, usize)>,
    pub days: u32,
}

/// Creates the output directory (which must not exist) with its INCOMPLETE marker.
pub fn reserve(out: &Path) -> anyhow::Result<OutputDir> {
    let dir = OutputDir::reserve(out, "--out")?;
    let marker = format!(
        "hsm-demo key ceremony, started {}.\n\
         This directory is not a completed ceremony: the ceremony stopped before its end,\n\
         or is still running. If share files are here, the token's SO PIN may already be\n\
         the secret they hold: keep them, and check with `hsm-demo quorum-reset-pin`.\n",
        utc_now()
    );
    dir.write(INCOMPLETE, marker.as_bytes(), 0o644)?;
    Ok(dir)
}

/// Directories beside `out` that hold an incomplete ceremony (for the next run to
/// point at).
pub fn incomplete_near(out: &Path) -> Vec<PathBuf> {
    let parent = crate::output::parent_of(out);
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join(INCOMPLETE).is_file())
        .collect();
    found.sort();
    found
}

/// Checks made before the user logs in and before anything is created: the label is
/// free (public objects are visible without a PIN; generation checks private ones
/// again) and the SO PIN is right. The SO login must come before the user's: one
/// application cannot be logged in as both (CKR_USER_ANOTHER_ALREADY_LOGGED_IN).
pub fn preflight(
    module: &Module,
    token: &TokenRef,
    label: &str,
    so_pin: Option<&AuthPin>,
) -> anyhow::Result<()> {
    if let Err(e) = module.public_session(token)?.ensure_label_free(label) {
        let hint = format!(
            "if it is left from a ceremony that did not complete, remove it with 'hsm-demo delete-key --label {label}'"
        );
        return Err(anyhow::Error::from(e).context(hint));
    }
    if let Some(so) = so_pin {
        let session = module.login_so(token, so).map_err(|e| {
            anyhow::Error::from(e).context("check the current SO PIN before Step 1")
        })?;
        session.logout()?;
    }
    Ok(())
}

/// Runs the ceremony with the user logged in, writing into `out` (reserved by
/// [`reserve`]) and handing every printed line to `print`.
pub fn run(
    hsm: &Hsm,
    settings: &Settings,
    so_pin: Option<&AuthPin>,
    opts: &Options,
    mut out: OutputDir,
    print: &mut dyn FnMut(&str),
) -> anyhow::Result<PathBuf> {
    let mut t = Transcript::new(print);
    header(hsm, opts, &mut t);

    let key = steps::generate_key(hsm, &opts.label)?;
    t.step(&format!(
        "[Step 1] Key pair generated: label={}, algo=EC/P-256",
        opts.label
    ));
    t.detail(&format!("id:       {}", hex::encode(&key.pair.private.id)));
    t.detail(&format!("uri:      {}", key.pair.private.uri));
    t.detail("template: CKA_TOKEN=true CKA_PRIVATE=true CKA_SENSITIVE=true CKA_EXTRACTABLE=false CKA_SIGN=true");
    t.step(&format!(
        "[Step 2] Public key (hex): {}",
        hex::encode(&key.point)
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

    let made = match (opts.quorum, so_pin) {
        (Some(q), Some(old_so)) => {
            let binding = Binding {
                ceremony_id: hex::encode(hsm.session().random(16).map_err(|e| undo(e.into()))?),
                token_label: hsm.token().label.clone(),
                token_serial: hsm.token().serial.clone(),
                root_cert_sha256: hex::encode(cert_sha256),
            };
            match steps::make_quorum(hsm, settings, q, old_so, binding, &mut out) {
                Ok(made) => {
                    record_quorum(&made, &mut t);
                    Some((made, old_so))
                }
                Err(steps::QuorumFailure::BeforeChange(e)) => {
                    // Definitely unchanged: the shares open nothing.
                    let _ = std::fs::remove_dir_all(out.path());
                    return Err(undo(e.context("the quorum step failed before the SO PIN changed")));
                }
                Err(steps::QuorumFailure::AfterChange(e)) => {
                    return Err(e.context(format!(
                        "the SO PIN may have changed: the custodian shares in {} are its only copy (the directory stays marked {INCOMPLETE})",
                        out.path().display()
                    )));
                }
            }
        }
        _ => {
            t.step("[Step 3] No quorum made (--no-quorum): the SO PIN is unchanged, and whoever holds it can reset the user PIN");
            None
        }
    };
    let changed = made.is_some();
    finish(hsm, settings, &signing, made, &out, &mut t).map_err(|e| {
        if changed {
            e.context(format!(
                "the SO PIN WAS changed; the custodian shares are kept in {} (marked {INCOMPLETE})",
                out.path().display()
            ))
        } else {
            undo(e)
        }
    })?;
    out.keep_on_drop();
    Ok(out.path().to_path_buf())
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
        Some((q, _)) => t.record(&format!("quorum:   {q} over the SO PIN")),
        None => t.record("quorum:   none (--no-quorum)"),
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
    Ok(root.sha256)
}

fn record_quorum(made: &steps::QuorumMade, t: &mut Transcript) {
    let q = made.quorum;
    t.step(&format!(
        "[Step 3] Quorum created: SO PIN replaced by a fresh {}-byte secret from the token RNG, split {q} (Shamir, GF(256)); the shares are real",
        made.secret_len
    ));
    t.detail(&format!("ceremony id: {}", made.binding.ceremony_id));
    for s in &made.shares {
        t.detail(&format!(
            "share {} of {}: share-{}-of-{}.json (check {})",
            s.index,
            s.shares,
            s.index,
            s.shares,
            &s.share_checks[usize::from(s.index) - 1][..16]
        ));
    }
    t.detail(&format!(
        "proof: shares {}..{} read back from disk recombined to the new SO PIN, which then logged in as SO; the PIN itself was never shown or stored",
        q.shares - q.threshold + 1,
        q.shares
    ));
}

/// Step 4: the final proof (a fresh process: old SO PIN refused, new one accepted),
/// the hashes of every output, the transcript and its signature by the root key, and
/// last the INCOMPLETE marker removed.
fn finish(
    hsm: &Hsm,
    settings: &Settings,
    key: &SigningKey<'_>,
    made: Option<(steps::QuorumMade, &AuthPin)>,
    out: &OutputDir,
    t: &mut Transcript,
) -> anyhow::Result<()> {
    if let Some((made, old_so)) = &made {
        let token = hsm.token();
        so_step::prove_so_pin(settings, hsm.module().path(), &token.serial, &made.new_pin, old_so)
            .map_err(|why| {
                anyhow::anyhow!(
                    "the final check failed: {why}; the custodians hold shares of the SO PIN that was set, which the token does not accept now"
                )
            })?;
    }
    t.step("[Step 4] Ceremony complete. Store HSM in vault.");
    if made.is_some() {
        t.detail("final check: a fresh process found the old SO PIN refused and the shares' PIN accepted");
    }
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
    t.record("signature: transcript.sig, by the root key; check with");
    t.record(
        "  openssl dgst -sha256 -verify root-ca.pub.pem -signature transcript.sig transcript.txt",
    );
    let text = t.text().to_string();
    let sig = key.sign(|sink| Ok(sink(text.as_bytes())?))?;
    out.write("transcript.txt", text.as_bytes(), 0o644)?;
    out.write("transcript.sig", sig.der(), 0o644)?;
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

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn describe_custody(c: &Custody) -> String {
    format!(
        "read back CKA_SENSITIVE={} CKA_EXTRACTABLE={} CKA_ALWAYS_SENSITIVE={} CKA_NEVER_EXTRACTABLE={} CKA_LOCAL={}",
        c.sensitive, c.extractable, c.always_sensitive, c.never_extractable, c.local
    )
}
