//! A quorum re-dealt: M current shares opened the role; a fresh secret from the token
//! RNG becomes its PIN and is split into a new share set, with the ceremony's rules
//! (steps::make_quorum): the new share files are durable in the output directory,
//! marked INCOMPLETE, before C_SetPIN; from that attempt on nothing removes them; a
//! fresh process proves the old PIN refused and the new one accepted; then the
//! transcript (old set, new set, time, every file's SHA-256) is signed by the key the
//! operator named, and only then is the marker removed.

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;

use crate::bridge::{sha256, BridgeError};
use crate::child::Launcher;
use crate::hsm::{Hsm, SigningKey};
use crate::output::OutputDir;
use crate::quorum::retired::{self, Retirement};
use crate::quorum::{Binding, Purpose, Quorum};

use super::steps::{self, QuorumFailure, SecretShape};
use super::transcript::{utc_now, Transcript};
use super::{so_step, INCOMPLETE};

/// The public key of the transcript's signer, as the re-deal directory holds it.
pub const SIGNER_PEM: &str = "transcript-signer.pub.pem";

/// What a re-deal replaces and with what.
pub struct Plan {
    /// `SoPin` or `Activation`.
    pub purpose: Purpose,
    /// The role's PIN, recombined from `old_files`.
    pub old_pin: AuthPin,
    pub old_files: Vec<PathBuf>,
    pub old_set: String,
    pub old_quorum: Quorum,
    pub new: (Quorum, SecretShape),
    /// The old set's binding (ceremony, token, root certificate): the new set keeps it.
    pub binding: Binding,
}

/// A completed re-deal.
pub struct Redealt {
    pub new_set: String,
    pub quorum: Quorum,
}

/// The INCOMPLETE marker of a re-deal directory.
pub fn marker(purpose: Purpose, old_set: &str) -> String {
    format!(
        "hsm-demo quorum re-deal of the {}, started {}.\n\
         This directory is not a completed re-deal. If share files are here, the token's\n\
         {} may already be the secret they hold, or may still be the one share set\n\
         {old_set} holds: keep both sets until one of them is shown to open the role\n\
         (try the new shares first).\n",
        purpose.secret_name(),
        utc_now(),
        purpose.secret_name()
    )
}

/// Runs the re-deal on `hsm` (logged in as the user; for the activation quorum with
/// the old PIN), signing the transcript with `key` (`who` in the transcript). The
/// retirement of the old set is recorded under `data_dir` once the proof holds.
pub fn run(
    hsm: &Hsm,
    launcher: &Launcher,
    plan: &Plan,
    (key, who): (&SigningKey<'_>, &str),
    data_dir: Option<&Path>,
    mut out: OutputDir,
    print: &mut dyn FnMut(&str),
) -> anyhow::Result<Redealt> {
    let secret = plan.purpose.secret_name();
    let role = plan.purpose.role().ok_or_else(|| anyhow::anyhow!("the {secret} is not a PIN"))?;
    let mut t = Transcript::new(print);
    opening(
        &mut t,
        ("hsm-demo quorum re-deal", hsm.token()),
        &format!("[Re-deal 1] Share set {} ({} over the {secret}) opened the role", plan.old_set, plan.old_quorum),
        (&plan.binding, &plan.old_set),
        ("old share file", &plan.old_files),
    )?;
    let pem = key.public().public_key_to_pem().map_err(BridgeError::openssl("encode the public key"))?;
    out.write(SIGNER_PEM, &pem, 0o644)?;

    let (q, shape) = plan.new;
    let made = match plan.purpose {
        Purpose::SoPin => {
            let apply = steps::set_so_pin(hsm, launcher, &plan.old_pin);
            steps::make_quorum(hsm.session(), plan.purpose, (q, shape), plan.binding.clone(), &mut out, apply)
        }
        _ => steps::make_quorum(hsm.session(), plan.purpose, (q, shape), plan.binding.clone(), &mut out, steps::set_user_pin(hsm)),
    };
    let made = made.map_err(|f| failed(f, plan.purpose, &plan.old_set, &out))?;
    let new_set = record_new_set(&made, &mut t);
    so_step::prove_pin(launcher, &hsm.token().serial, role, &made.new_pin, &plan.old_pin).map_err(|why| {
        anyhow::anyhow!(
            "the final check failed: {why}; keep the new shares in {} and the shares of set {} until one of them opens the role",
            out.path().display(),
            plan.old_set
        )
    })?;
    let when = utc_now();
    t.step(&format!(
        "[Re-deal 3] Share set {} retired: a fresh process found its PIN refused and the new set's accepted",
        plan.old_set
    ));
    retire(data_dir, &plan.old_set, &new_set, when, &out);
    super::seal(key, &out, who, SIGNER_PEM, &mut t)?;
    out.keep_on_drop();
    Ok(Redealt { new_set, quorum: q })
}

/// The new set's lines in the transcript; its id.
pub(super) fn record_new_set(made: &steps::QuorumMade, t: &mut Transcript) -> String {
    let new_set = made.shares.first().map(|s| s.set_id()).unwrap_or_default();
    t.step(&format!(
        "[Re-deal 2] {} replaced by a fresh {} from the token RNG, split {} (Shamir, GF(256))",
        made.purpose.secret_name(),
        made.shape,
        made.quorum
    ));
    super::record::share_set(made.purpose, &made.shares, t);
    new_set
}

/// The opening of a re-deal's transcript: the header, the first step (`step`), the
/// ceremony and the set replaced, and each share file that opened the role with its
/// SHA-256 (`what`: "old share file", "SO share file").
pub(super) fn opening(
    t: &mut Transcript,
    (title, token): (&str, &crate::token::TokenRef),
    step: &str,
    (binding, old_set): (&Binding, &str),
    (what, files): (&str, &[PathBuf]),
) -> anyhow::Result<()> {
    t.record(title);
    t.record(&format!("token: '{}' (serial {})", token.label, token.serial));
    t.record("");
    t.step(step);
    t.detail(&format!("ceremony id: {}", binding.ceremony_id));
    t.detail(&format!("replaces share set id: {old_set}"));
    for f in files {
        let digest = hex::encode(sha256(&crate::output::read_regular(f)?));
        t.detail(&format!("{what} {} (SHA-256 {digest})", f.display()));
    }
    Ok(())
}

/// Records on this host that `old` was replaced by `new` (a note if it cannot: the
/// token refuses the old PIN all the same).
pub(super) fn retire(data_dir: Option<&Path>, old: &str, new: &str, when: String, out: &OutputDir) {
    let Some(dir) = data_dir else { return };
    let r = Retirement {
        old: old.to_string(),
        new: new.to_string(),
        when,
        record: std::fs::canonicalize(out.path()).unwrap_or_else(|_| out.path().to_path_buf()).display().to_string(),
    };
    if let Err(e) = retired::record(dir, &r) {
        crate::console::note(&format!(
            "the retirement of set {old} could not be recorded in {} ({e}); the token refuses its PIN all the same",
            dir.display()
        ));
    }
}

/// A failed quorum step of a re-deal, as the operator must read it: before the change
/// the directory is removed and the old set still opens the role; after it (or not
/// known) both sets are kept.
pub(super) fn failed(f: QuorumFailure, purpose: Purpose, old_set: &str, out: &OutputDir) -> anyhow::Error {
    let secret = purpose.secret_name();
    match f {
        QuorumFailure::BeforeChange(e) => {
            let _ = std::fs::remove_dir_all(out.path());
            e.context(format!(
                "the re-deal stopped before the {secret} changed; share set {old_set} still opens it and nothing was written"
            ))
        }
        QuorumFailure::AfterChange(e) => e.context(format!(
            "the {secret} may have changed: the new shares in {} are its only copy if it did, the shares of set {old_set} if it did not; keep both (the directory stays marked {INCOMPLETE})",
            out.path().display()
        )),
    }
}
