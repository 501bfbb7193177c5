//! The transcript's records of the ceremony's backup and quorum steps.

use crate::quorum::{Binding, Purpose};

use super::transcript::Transcript;
use super::{backup, steps};

pub fn backup(made: &backup::BackupMade, binding: &Binding, t: &mut Transcript) {
    let q = made.quorum;
    t.step(&format!(
        "[Step 2b] Backup: the root key wrapped ({}) by a trusted AES-256 wrap key the SO installed from a fresh 32-byte secret, split {q} (Shamir, GF(256)); the wrap key object was destroyed",
        crate::token::wrap::WRAP_MECHANISM_NAME
    ));
    t.detail(&format!("ceremony id: {}", binding.ceremony_id));
    share_set(Purpose::Backup, &made.shares, t);
    t.detail(&format!(
        "{}: {} bytes wrapped; wrap key check value {}; custody: extractable only wrapped by a trusted key the SO installs, under {q}",
        backup::WRAPPED_FILE,
        made.blob_len,
        made.wrap_key_check
    ));
}

pub fn quorum(made: &steps::QuorumMade, t: &mut Transcript) {
    let q = made.quorum;
    let (title, pin) = match made.purpose {
        Purpose::SoPin => ("[Step 3] Quorum created", "SO PIN"),
        Purpose::Activation | Purpose::Backup => ("[Step 3b] Activation quorum created", "user PIN"),
    };
    t.step(&format!(
        "{title}: {pin} replaced by a fresh {} from the token RNG, split {q} (Shamir, GF(256)); the shares are real",
        made.shape
    ));
    t.detail(&format!("ceremony id: {}", made.binding.ceremony_id));
    share_set(made.purpose, &made.shares, t);
    let proof = match made.purpose {
        Purpose::SoPin => "which then logged in as SO",
        Purpose::Activation | Purpose::Backup => "which the token then took as the user PIN",
    };
    t.detail(&format!(
        "proof: shares {}..{} read back from disk recombined to the new {pin}, {proof}; the PIN itself was never shown or stored",
        q.shares - q.threshold + 1,
        q.shares
    ));
}

/// A share set's lines: its id, as every file of the set carries it, then each file
/// with the start of its check value ("backup share K of N" for the backup quorum).
pub(super) fn share_set(purpose: Purpose, shares: &[crate::quorum::ShareFile], t: &mut Transcript) {
    if let Some(s) = shares.first() {
        t.detail(&format!("share set id: {}", s.set_id()));
    }
    let word = if purpose == Purpose::Backup { "backup share" } else { "share" };
    for s in shares {
        t.detail(&format!(
            "{word} {} of {}: {} (check {})",
            s.index,
            s.shares,
            purpose.file_name(s.index, s.shares),
            &s.share_checks[usize::from(s.index) - 1][..16]
        ));
    }
}
