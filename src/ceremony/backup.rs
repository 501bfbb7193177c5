//! A root key's backup under an M-of-N wrap key, and its restore onto another token
//! (token::wrap has the PKCS#11 side). The wrap secret comes from the token's RNG, is
//! split into backup shares written ahead and made durable, and is recombined from the
//! files on disk before it is used: a wrapped blob never exists without shares that
//! open it. The wrap key object lives only while it is used.
//!
//! `root-key.wrapped` (format `hsm-demo-wrapped-key/1`): JSON with the key's label and
//! algorithm, its public key (SPKI, base64) and the SPKI's SHA-256, the mechanism, the
//! wrap key's check value, the ceremony id its shares are bound to, and the wrapped
//! blob (hex).

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::bridge::{self, PKey, Public};
use crate::child::Launcher;
use crate::hsm::Hsm;
use crate::output::OutputDir;
use crate::quorum::{self, Binding, Purpose, Quorum, ShareFile};
use crate::token::wrap::{PublicParts, WRAP_MECHANISM_NAME};
use crate::token::{Algorithm, KeyKind, KeyObject, Session, TokenError, User};

use super::so_step;

pub const FORMAT: &str = "hsm-demo-wrapped-key/1";
/// The ceremony's blob.
pub const WRAPPED_FILE: &str = "root-key.wrapped";

/// A wrapped key as it is kept at a second site.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrappedKey {
    pub format: String,
    pub label: String,
    pub algorithm: String,
    /// The DER SubjectPublicKeyInfo, base64.
    pub spki: String,
    pub spki_sha256: String,
    pub mechanism: String,
    /// The wrap key's check value (AES-ECB of a zero block, 3 bytes).
    pub wrap_key_check: String,
    /// The ceremony the backup shares are bound to.
    pub ceremony_id: String,
    /// The wrapped private key, hex.
    pub wrapped: String,
}

/// Why a wrapped key or its shares cannot be used: exit 2, nothing changed.
pub use crate::error::UsageError as BackupRefused;

impl WrappedKey {
    /// Reads and checks a wrapped-key file (a regular file only).
    pub fn read(path: &Path) -> Result<WrappedKey, BackupRefused> {
        let bad = |why: String| BackupRefused(format!("--wrapped {}: {why}", path.display()));
        let bytes = crate::output::read_regular(path).map_err(|e| bad(crate::output::reason(&e)))?;
        let w: WrappedKey = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a wrapped-key file ({e})")))?;
        if w.format != FORMAT || w.mechanism != WRAP_MECHANISM_NAME {
            return Err(bad(format!("format {} / mechanism {} is not {FORMAT} / {WRAP_MECHANISM_NAME}", w.format, w.mechanism)));
        }
        Ok(w)
    }

    pub fn public_key(&self) -> Result<PKey<Public>, BackupRefused> {
        let der = crate::bridge::base64_decode(&self.spki).map_err(|_| BackupRefused("the wrapped key's SPKI is not base64".into()))?;
        let key = PKey::public_key_from_der(&der).map_err(|_| BackupRefused("the wrapped key's SPKI does not parse".into()))?;
        let digest = bridge::spki_sha256(&key).map_err(|e| BackupRefused(e.to_string()))?;
        if hex::encode(digest) != self.spki_sha256 {
            return Err(BackupRefused("the wrapped key's SPKI does not match its SHA-256".into()));
        }
        Ok(key)
    }

    pub fn blob(&self) -> Result<Vec<u8>, BackupRefused> {
        hex::decode(&self.wrapped).map_err(|_| BackupRefused("the wrapped blob is not hex".into()))
    }
}

/// The wrap secret from M backup share files, checked against `wrapped`: the shares'
/// ceremony and the wrap key's check value must be the blob's.
pub fn secret_for(shares: &[PathBuf], wrapped: &WrappedKey) -> anyhow::Result<quorum::Locked> {
    let (secret, binding) = quorum::combine(shares, Purpose::Backup)?;
    if binding.ceremony_id != wrapped.ceremony_id {
        return Err(BackupRefused(format!(
            "these backup shares belong to ceremony {}, the wrapped key to ceremony {}; nothing was changed",
            binding.ceremony_id, wrapped.ceremony_id
        ))
        .into());
    }
    if bridge::aes_check_value(&secret)? != wrapped.wrap_key_check {
        return Err(BackupRefused("the backup shares do not make the wrap key the blob was made with (check value differs); nothing was changed".into()).into());
    }
    Ok(secret)
}

/// What the ceremony's backup step made.
pub struct BackupMade {
    pub quorum: Quorum,
    pub shares: Vec<ShareFile>,
    pub wrap_key_check: String,
    pub blob_len: usize,
}

/// The label of a transient wrap key object.
fn wrap_label(tag: &str) -> String {
    format!("hsm-demo wrap key {tag}")
}

/// The ceremony's Step 2b: shares of a fresh wrap secret written ahead, recombined from
/// disk, the trusted wrap key installed by the SO (a child process), the root wrapped,
/// the wrap key destroyed, `root-key.wrapped` written.
#[allow(clippy::too_many_arguments)]
pub fn backup_root(
    hsm: &Hsm,
    launcher: &Launcher,
    so_pin: &AuthPin,
    (private, public, algo): (&KeyObject, &PKey<Public>, Algorithm),
    q: Quorum,
    binding: &Binding,
    out: &mut OutputDir,
) -> anyhow::Result<BackupMade> {
    let secret = Zeroizing::new(hsm.session().random(32)?);
    let shares = quorum::split(&secret, q, binding, Purpose::Backup);
    let mut files = Vec::new();
    for s in &shares {
        let name = Purpose::Backup.file_name(s.index, s.shares);
        let json = Zeroizing::new(serde_json::to_string_pretty(s)?);
        out.write(&name, json.as_bytes(), 0o600)?;
        files.push(out.path().join(name));
    }
    let (recovered, _) = quorum::combine(&files[files.len() - usize::from(q.threshold)..], Purpose::Backup)
        .map_err(|e| anyhow::anyhow!("the backup shares do not recombine: {e}"))?;
    if *recovered != *secret {
        anyhow::bail!("the backup share files do not recombine to the wrap secret");
    }
    let label = wrap_label(&binding.ceremony_id[..16.min(binding.ceremony_id.len())]);
    so_step::install_wrap_key(launcher, &hsm.token().serial, so_pin, &recovered, &label)
        .map_err(|e| anyhow::anyhow!("install the trusted wrap key: {e}"))?;
    let session = hsm.session();
    let wrapped = with_wrap_key(session, &label, |wrap| session.wrap_with(wrap, private.handle))?;
    let file = WrappedKey {
        format: FORMAT.into(),
        label: private.label.clone(),
        algorithm: algo.name().into(),
        spki: crate::bridge::base64_encode(&public.public_key_to_der()?),
        spki_sha256: hex::encode(bridge::spki_sha256(public)?),
        mechanism: WRAP_MECHANISM_NAME.into(),
        wrap_key_check: bridge::aes_check_value(&recovered)?,
        ceremony_id: binding.ceremony_id.clone(),
        wrapped: hex::encode(&wrapped),
    };
    out.write(WRAPPED_FILE, serde_json::to_string_pretty(&file)?.as_bytes(), 0o644)?;
    Ok(BackupMade { quorum: q, shares, wrap_key_check: file.wrap_key_check, blob_len: wrapped.len() })
}

/// Runs `f` with the wrap key labelled `label`, and destroys that object afterwards
/// whatever `f` returned.
fn with_wrap_key<T>(session: &Session<User>, label: &str, f: impl FnOnce(cryptoki::object::ObjectHandle) -> Result<T, TokenError>) -> Result<T, TokenError> {
    let wrap = session.find_wrap_key(label)?;
    let result = f(wrap);
    let destroyed = session.destroy_object(wrap);
    let value = result?;
    destroyed?;
    Ok(value)
}

/// The SO's part, in this process (no other session of it may be open): the trusted
/// wrap key `value` installed as `label`; the session is closed again.
pub fn install_in_process(module: &crate::token::Module, token: &crate::token::TokenRef, so_pin: &AuthPin, value: &[u8], label: &str) -> Result<(), TokenError> {
    let so = module.login_so(token, so_pin)?;
    so.install_wrap_key(value, label)?;
    so.logout()
}

/// Wraps `private` (which must be extractable only under a trusted key) with the wrap
/// key installed as `label`, destroying that key object afterwards.
pub fn wrap_in_session(session: &Session<User>, label: &str, private: &KeyObject) -> Result<Vec<u8>, TokenError> {
    with_wrap_key(session, label, |wrap| session.wrap_with(wrap, private.handle))
}

/// The restore's token work: the wrap secret as an unwrap-only session key, the blob
/// unwrapped as `label` with the custody template, the public key object made from the
/// SPKI, the session key destroyed. On any failure, what was created is destroyed again.
pub fn unwrap_in_session(
    hsm: &Hsm,
    mech: crate::token::wrap::Rfc5649,
    secret: &[u8],
    wrapped: &WrappedKey,
    public: &PKey<Public>,
    label: &str,
) -> anyhow::Result<KeyObject> {
    let session = hsm.session();
    let algo: Algorithm = wrapped.algorithm.parse().map_err(|e| BackupRefused(format!("{e}")))?;
    let kind = algo.kind();
    let ec_point = |point: Vec<u8>| bridge::der::tlv(0x04, &point);
    let parts = match (bridge::key_parts(public)?, &kind) {
        (bridge::KeyParts::Ec(point), KeyKind::Ec(Some(curve))) => {
            PublicParts::Ec { params: curve.params().unwrap_or_default().to_vec(), ec_point: ec_point(point) }
        }
        (bridge::KeyParts::Rsa { n, e }, KeyKind::Rsa(_)) => PublicParts::Rsa { n, e },
        (bridge::KeyParts::Ed25519(point), KeyKind::EdDsa) => PublicParts::Ed25519 { ec_point: ec_point(point) },
        _ => return Err(BackupRefused(format!("the wrapped key's public key is not an {} key", algo.name())).into()),
    };
    let id = session.random(16)?;
    let blob = wrapped.blob()?;
    let mut created = Vec::new();
    let made = (|| -> anyhow::Result<KeyObject> {
        // (A context would hide the kind from error.rs, which reads the chain's types.)
        let unwrap_key = session.session_unwrap_key(secret)?;
        let unwrapped = hsm.module().unwrap_private(session, mech, unwrap_key, &blob, &kind, label, &id);
        let _ = session.destroy_object(unwrap_key);
        let private = unwrapped.map_err(|e| {
            BackupRefused(format!(
                "the wrapped key does not unwrap: its AES key wrap integrity check (RFC 5649) fails, so the file was altered or made under another wrap key ({e}); nothing was created"
            ))
        })?;
        created.push(private);
        created.push(session.create_public_key(&parts, label, &id)?);
        let key = session.find_private_key(&crate::token::KeySelector { label: Some(label.to_string()), id: Some(id.clone()) })?;
        let custody = session.custody(key.handle)?;
        let short = custody.restored_shortfalls();
        if !short.is_empty() {
            anyhow::bail!("the restored key's custody read back wrong: {}", short.join(", "));
        }
        Ok(key)
    })();
    if made.is_err() {
        for h in created {
            let _ = session.destroy_object(h);
        }
    }
    made
}
