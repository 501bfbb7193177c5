//! The ceremony's steps, each returning what it made: the key pair (Steps 1 and 2),
//! the root certificate, and the quorum (Step 3). They print nothing.

use std::path::PathBuf;

use anyhow::bail;
use cryptoki::types::AuthPin;
use crate::bridge::{sha256, X509};
use zeroize::Zeroizing;

use crate::bridge::{self, BridgeError};
use crate::ca::RootProfile;
use crate::hsm::{public_key_of, Hsm, SigningKey};
use crate::output::OutputDir;
use crate::child::Launcher;
use crate::quorum::{self, Binding, Purpose, Quorum, ShareFile};
use crate::token::{Algorithm, Custody, KeyKind, KeyPair};

use super::so_step::{self, Outcome};

/// Steps 1 and 2: the key pair in the token and its public key.
pub struct NewKey {
    pub pair: KeyPair,
    /// The public key as OpenSSL holds it.
    pub public: bridge::PKey<bridge::Public>,
    /// What Step 2 shows: the uncompressed EC point (CKA_EC_POINT), or for RSA and
    /// Ed25519 the DER SubjectPublicKeyInfo.
    pub shown: Vec<u8>,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

/// Step 1: a key pair of `algo` generated in the token (custody read back).
pub fn generate_key(hsm: &Hsm, algo: Algorithm, label: &str, backup: bool) -> anyhow::Result<NewKey> {
    let pair = hsm.session().generate_with(algo, label, None, backup)?;
    let public = public_key_of(hsm.session(), pair.public, &pair.private.kind)?;
    let shown = match pair.private.kind {
        KeyKind::Ec(_) => hsm.session().ec_point(pair.public)?,
        _ => public
            .public_key_to_der()
            .map_err(BridgeError::openssl("encode the public key"))?,
    };
    Ok(NewKey {
        spki_sha256: bridge::spki_sha256(&public)?,
        pair,
        shown,
        public,
    })
}

/// The self-signed root certificate and what was checked before it is written.
pub struct RootCertificate {
    pub cert: X509,
    pub serial: Vec<u8>,
    /// SHA-256 of the certificate's DER.
    pub sha256: [u8; 32],
    pub checks: Vec<&'static str>,
    pub custody: Custody,
}

/// Builds the root certificate from the profile with the token key, then checks it:
/// the certificate carries the token's key, verifies, is a trust anchor to OpenSSL,
/// SKI = AKI; and the key reads back with full custody.
pub fn root_certificate(
    hsm: &Hsm,
    key: &SigningKey<'_>,
    profile: &RootProfile,
    days: u32,
) -> anyhow::Result<RootCertificate> {
    let mut serial = hsm.session().random(16)?;
    // Positive and 16 bytes long: clear the sign bit, set the next one.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let subject = profile.subject_name()?;
    let template = profile.template(&subject, &serial, days);
    let cert = key.with_tbs_signer(|signer| bridge::build_self_signed(&template, key.public(), signer))?;
    let checks = bridge::check_self_signed(&cert, key.public())
        .map_err(|e| anyhow::anyhow!("root certificate check failed: {e}"))?;
    let custody = hsm.session().custody(key.object().handle)?;
    let shortfalls = custody.shortfalls();
    if !shortfalls.is_empty() {
        bail!("custody read-back failed: {}", shortfalls.join(", "));
    }
    let der = cert
        .to_der()
        .map_err(BridgeError::openssl("encode the certificate"))?;
    Ok(RootCertificate {
        sha256: sha256(&der),
        cert,
        serial,
        checks,
        custody,
    })
}

/// Step 3, done: a quorum over a new PIN.
pub struct QuorumMade {
    pub purpose: Purpose,
    pub quorum: Quorum,
    /// What the new PIN is made of.
    pub shape: SecretShape,
    pub binding: Binding,
    pub shares: Vec<ShareFile>,
    /// The new PIN, for the end-of-ceremony proof; never shown or written.
    pub new_pin: quorum::Locked,
}

/// Why a quorum step failed, and whether its PIN had changed by then.
pub enum QuorumFailure {
    /// Definitely unchanged: the shares open nothing.
    BeforeChange(anyhow::Error),
    /// Changed, or not known to be unchanged: the shares are the PIN.
    AfterChange(anyhow::Error),
}

/// The shape of the PIN a quorum makes, chosen from the token's PIN length limit
/// (ulMaxPinLen; `None` is CK_EFFECTIVELY_INFINITE, PKCS#11 3.0 §3.2). Checked before
/// Step 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretShape {
    /// `bytes` of token randomness, hex-encoded (a PIN twice as long): 32 bytes, or
    /// fewer down to 16 when the token allows fewer than 64 characters.
    Hex { bytes: usize },
    /// For tokens whose PINs cannot hold 32 characters (opencryptoki's soft token
    /// allows 8): `chars` characters of the base64url alphabet, 6 bits of token
    /// randomness each, as long as the token allows.
    Base64 { chars: usize },
}

/// The fewest characters a short-PIN quorum secret may have: 48 bits.
const MIN_BASE64_CHARS: usize = 8;
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl SecretShape {
    pub fn for_token(max_pin_len: Option<usize>) -> Result<SecretShape, crate::error::SetupError> {
        let max = max_pin_len.unwrap_or(64).min(64);
        if max >= 32 {
            return Ok(SecretShape::Hex { bytes: max / 2 });
        }
        if max >= MIN_BASE64_CHARS {
            return Ok(SecretShape::Base64 { chars: max });
        }
        Err(crate::error::SetupError(format!(
            "the token allows PINs of at most {max} characters; a quorum secret needs at least {MIN_BASE64_CHARS} (48 bits)"
        )))
    }

    /// Token random bytes the PIN is made from.
    fn random_bytes(self) -> usize {
        match self {
            SecretShape::Hex { bytes } => bytes,
            SecretShape::Base64 { chars } => chars,
        }
    }

    /// The PIN: printable ASCII, so any token's C_SetPIN/C_InitPIN takes it.
    fn encode(self, random: &[u8]) -> Zeroizing<String> {
        match self {
            SecretShape::Hex { .. } => Zeroizing::new(hex::encode(random)),
            // 256 is a multiple of 64: the low 6 bits of a uniform byte are uniform.
            SecretShape::Base64 { .. } => Zeroizing::new(
                random.iter().map(|b| BASE64URL[usize::from(b & 63)] as char).collect(),
            ),
        }
    }
}

impl std::fmt::Display for SecretShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretShape::Hex { bytes } => write!(f, "{bytes}-byte secret"),
            SecretShape::Base64 { chars } => write!(
                f,
                "{chars}-character secret ({} bits; the token allows no longer PIN)",
                chars * 6
            ),
        }
    }
}

/// A quorum step, write-ahead: a fresh PIN from the token RNG, split M-of-N into share
/// files written into the output directory and made durable (file and directory
/// synced); the last M files are read back and recombined, and only that recombined
/// value goes to the token, through `apply`. From the moment `apply` is called nothing
/// removes the share files: `out` is kept whatever happens next.
pub fn make_quorum<R>(
    rng: &crate::token::Session<R>,
    purpose: Purpose,
    (q, shape): (Quorum, SecretShape),
    binding: Binding,
    out: &mut OutputDir,
    apply: impl FnOnce(&[u8], &str) -> Outcome,
) -> Result<QuorumMade, QuorumFailure> {
    let before = |e: anyhow::Error| QuorumFailure::BeforeChange(e);
    let secret = Zeroizing::new(
        rng.random(shape.random_bytes())
            .map_err(|e| before(e.into()))?,
    );
    let new_pin = shape.encode(&secret);
    let shares = quorum::split(new_pin.as_bytes(), q, &binding, purpose);
    let mut files = Vec::new();
    for s in &shares {
        let name = purpose.file_name(s.index, s.shares);
        let json =
            Zeroizing::new(serde_json::to_string_pretty(s).map_err(|e| before(e.into()))?);
        out.write(&name, json.as_bytes(), 0o600)
            .map_err(|e| before(e.into()))?;
        files.push(out.path().join(name));
    }
    let subset: Vec<PathBuf> = files[files.len() - usize::from(q.threshold)..].to_vec();
    // A recombination failure here is ours, not bad user input: keep it untyped.
    let (recovered, _) =
        quorum::combine(&subset, purpose).map_err(|e| before(anyhow::anyhow!("{e}")))?;
    if *recovered != *new_pin.as_bytes() {
        return Err(before(anyhow::anyhow!(
            "the share files do not recombine to the new PIN"
        )));
    }
    out.keep_on_drop();
    let set = shares.first().map(ShareFile::set_id).unwrap_or_default();
    match apply(&recovered, &set) {
        Outcome::Changed => Ok(QuorumMade {
            purpose,
            quorum: q,
            shape,
            binding,
            shares,
            new_pin: recovered,
        }),
        Outcome::Unchanged(why) => Err(before(anyhow::anyhow!("{why}"))),
        Outcome::ChangedOrUnknown(why) => Err(QuorumFailure::AfterChange(anyhow::anyhow!("{why}"))),
    }
}

/// The SO PIN's change: `__set-so-pin` in a child process (see so_step).
pub fn set_so_pin<'a>(hsm: &Hsm, launcher: &'a Launcher, old: &AuthPin) -> impl FnOnce(&[u8], &str) -> Outcome + 'a {
    let serial = hsm.token().serial.clone();
    let old = old.clone();
    let guard = hsm.module().store_guard();
    move |new, _set| marked(guard.as_ref(), &serial, "SO PIN change", || so_step::set_so_pin(launcher, &serial, &old, new))
}

/// A PIN change marked in the store guard (token::store_guard): a mark that cannot be
/// written stops it before anything changes.
fn marked(guard: Option<&crate::token::StoreGuard>, serial: &str, what: &str, change: impl FnOnce() -> Outcome) -> Outcome {
    crate::token::store_guard::guarded(guard, serial, what, change).unwrap_or_else(|e| Outcome::Unchanged(e.to_string()))
}

/// The user PIN's change: C_SetPIN on this process's user session (the provider's key
/// stays valid: the login is unchanged). A refusal of the PINs themselves means
/// unchanged; any other failure does not say, and counts as changed. The token's
/// activation quorum record names the new set first (token::marker), and is put back
/// when the PIN is definitely unchanged.
pub fn set_user_pin(hsm: &Hsm) -> impl FnOnce(&[u8], &str) -> Outcome + '_ {
    let guard = hsm.module().store_guard();
    move |new, set| {
        let session = hsm.session();
        let before = match session.activation_quorum() {
            Ok(before) => before,
            Err(e) => return Outcome::Unchanged(e.to_string()),
        };
        if let Err(e) = session.mark_activation_quorum(set) {
            return Outcome::Unchanged(e.to_string());
        }
        let outcome = marked(guard.as_ref(), &hsm.token().serial, "user PIN change", || match hsm.set_user_pin(new) {
            Ok(()) => Outcome::Changed,
            Err(e) if e.pin_refused() => Outcome::Unchanged(e.to_string()),
            Err(e) => Outcome::ChangedOrUnknown(e.to_string()),
        });
        if let Outcome::Unchanged(_) = outcome {
            let _ = match before {
                Some(set) => session.mark_activation_quorum(&set),
                None => session.unmark_activation_quorum(),
            };
        }
        outcome
    }
}
