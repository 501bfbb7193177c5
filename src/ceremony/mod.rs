//! The offline-root key ceremony: key generation in the token, the root certificate
//! made by OpenSSL with the token key, custody proof, a real M-of-N quorum over the
//! SO PIN, and a signed transcript. `steps` makes each step's data; this file runs
//! them in order with the ceremony's rules on failure, and records the transcript.

pub mod so_step;
mod steps;
mod transcript;

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;
use openssl::sha::sha256;

use crate::bridge::{BridgeError, Profile};
use crate::hsm::{Hsm, SigningKey};
use crate::output::{self, StagingDir};
use crate::quorum::{Binding, Quorum};
use crate::token::{Custody, Module, TokenRef};

pub use transcript::utc_stamp;
use transcript::{utc_now, Transcript};

/// The longest validity accepted: 25 years.
pub const MAX_DAYS: u32 = 25 * 365 + 6;

pub struct Options {
    pub label: String,
    pub profile: Profile,
    /// What to call the profile in the transcript.
    pub profile_name: String,
    pub out: PathBuf,
    pub quorum: Option<Quorum>,
    pub days: u32,
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
    module.public_session(token)?.ensure_label_free(label)?;
    if let Some(so) = so_pin {
        let session = module.login_so(token, so).map_err(|e| {
            anyhow::Error::from(e).context("check the current SO PIN before Step 1")
        })?;
        session.logout()?;
    }
    Ok(())
}

/// Runs the ceremony with the user logged in, handing every printed line to `print`,
/// and returns the output directory. Until the SO PIN changes, any failure destroys
/// the new key pair and leaves no output; from the PIN change on, the share files are
/// kept whatever happens.
pub fn run(
    hsm: &Hsm,
    so_pin: Option<&AuthPin>,
    opts: &Options,
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

    let staged = hsm
        .load_key(key.pair.private.clone())
        .and_then(|signing| {
            let staging = stage_root(hsm, &signing, opts, &mut t)?;
            Ok((signing, staging))
        });
    let (signing, (mut staging, cert_sha256)) = match staged {
        Ok(s) => s,
        Err(e) => {
            let _ = hsm.session().destroy_key_pair(&key.pair);
            return Err(e.context(
                "the ceremony stopped; the new key pair was destroyed and nothing was written",
            ));
        }
    };

    match (opts.quorum, so_pin) {
        (Some(q), Some(old_so)) => {
            let binding = Binding {
                ceremony_id: hex::encode(hsm.session().random(16)?),
                token_label: hsm.token().label.clone(),
                token_serial: hsm.token().serial.clone(),
                root_cert_sha256: hex::encode(cert_sha256),
            };
            let made = steps::make_quorum(hsm, q, old_so, binding, &staging);
            if !matches!(made, Err(steps::QuorumFailure::BeforeChange(_))) {
                // Past C_SetPIN the shares are the only way to the SO role.
                staging.keep_on_drop();
            }
            match made {
                Ok(made) => record_quorum(&made, &mut t),
                Err(steps::QuorumFailure::BeforeChange(e)) => {
                    // The SO PIN is unchanged; the key is fine but the ceremony is not.
                    return Err(e.context("the quorum step failed before the SO PIN changed; nothing was written (the key pair stays in the token)"));
                }
                Err(steps::QuorumFailure::AfterChange(e)) => {
                    let kept = keep_incomplete(staging, &opts.out);
                    return Err(e.context(format!(
                        "the SO PIN WAS changed; the custodian shares are kept in {kept}"
                    )));
                }
            }
        }
        _ => t.step("[Step 3] No quorum made (--no-quorum): the SO PIN is unchanged, and whoever holds it can reset the user PIN"),
    }
    let pin_changed = opts.quorum.is_some();
    let staged_at = staging.path().to_path_buf();
    finish(opts, &signing, staging, t).map_err(|e| {
        if pin_changed {
            e.context(format!(
                "the SO PIN WAS changed; the custodian shares are kept in {}",
                staged_at.display()
            ))
        } else {
            e
        }
    })
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
        Some(q) => t.record(&format!("quorum:   {q} over the SO PIN")),
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

/// The root certificate, recorded, and written with the public key into a new
/// staging directory beside the output directory (one filesystem, so the final
/// rename is atomic). Returns the directory and the certificate's SHA-256.
fn stage_root(
    hsm: &Hsm,
    signing: &SigningKey<'_>,
    opts: &Options,
    t: &mut Transcript,
) -> anyhow::Result<(StagingDir, [u8; 32])> {
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

    let staging = StagingDir::new_in(output::parent_of(&opts.out), "ceremony-partial")?;
    let pem = root
        .cert
        .to_pem()
        .map_err(BridgeError::openssl("encode the certificate"))?;
    let pub_pem = signing
        .public()
        .public_key_to_pem()
        .map_err(BridgeError::openssl("encode the public key"))?;
    staging.write("root-ca.pem", &pem, 0o644)?;
    staging.write("root-ca.pub.pem", &pub_pem, 0o644)?;
    Ok((staging, root.sha256))
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

/// Step 4: hashes of every output, the transcript and its signature by the root key,
/// and the move of the whole directory into place.
fn finish(
    opts: &Options,
    key: &SigningKey<'_>,
    staging: StagingDir,
    mut t: Transcript,
) -> anyhow::Result<PathBuf> {
    t.step("[Step 4] Ceremony complete. Store HSM in vault.");
    let names = staging.names()?;
    t.record("");
    t.record("files (SHA-256):");
    for name in &names {
        let digest = sha256(&std::fs::read(staging.path().join(name))?);
        t.record(&format!("  {}  {name}", hex::encode(digest)));
    }
    t.record(&format!("finished: {}", utc_now()));
    t.record("signature: transcript.sig, by the root key; check with");
    t.record(
        "  openssl dgst -sha256 -verify root-ca.pub.pem -signature transcript.sig transcript.txt",
    );
    let text = t.text().to_string();
    let sig = key.sign(|sink| Ok(sink(text.as_bytes())?))?;
    staging.write("transcript.txt", text.as_bytes(), 0o644)?;
    staging.write("transcript.sig", sig.der(), 0o644)?;
    let pin_changed = opts.quorum.is_some();
    if let Err((kept, e)) = staging.publish(&opts.out) {
        if !pin_changed {
            let _ = std::fs::remove_dir_all(&kept);
        }
        anyhow::bail!("cannot move the outputs into {}: {e}", opts.out.display());
    }
    for name in names
        .iter()
        .map(String::as_str)
        .chain(["transcript.txt", "transcript.sig"])
    {
        t.print(&format!("         {}", opts.out.join(name).display()));
    }
    Ok(opts.out.clone())
}

/// After the SO PIN changed, a failure keeps the shares: the staging directory is
/// renamed to `<out>.incomplete`, or left where it is if that fails.
fn keep_incomplete(staging: StagingDir, out: &Path) -> String {
    let target = PathBuf::from(format!("{}.incomplete", out.display()));
    match staging.publish(&target) {
        Ok(()) => target.display().to_string(),
        Err((kept, _)) => kept.display().to_string(),
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
    format!(
        "read back CKA_SENSITIVE={} CKA_EXTRACTABLE={} CKA_ALWAYS_SENSITIVE={} CKA_NEVER_EXTRACTABLE={} CKA_LOCAL={}",
        c.sensitive, c.extractable, c.always_sensitive, c.never_extractable, c.local
    )
}
