//! The offline-root key ceremony: key generation in the token, the root certificate
//! made by OpenSSL with the token key, custody proof, a real m-of-n quorum over the
//! SO PIN, and a signed transcript. Outputs appear atomically or not at all.

mod transcript;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use cryptoki::types::AuthPin;
use openssl::pkey::{PKey, Private};
use openssl::sha::sha256;
use zeroize::Zeroizing;

use crate::bridge::{self, Profile, Provider};
use crate::quorum::{self, Binding, Quorum};
use crate::token::{Custody, Module, TokenRef, UserSession};

pub use transcript::utc_stamp;

/// The longest validity accepted: 25 years.
pub const MAX_DAYS: u32 = 25 * 365 + 6;

pub struct Options {
    pub label: String,
    /// The certificate profile (an OpenSSL config file).
    pub config: PathBuf,
    /// What to call the profile in the transcript.
    pub config_name: String,
    pub out: PathBuf,
    pub quorum: Option<Quorum>,
    pub days: u32,
}

/// Everything the ceremony needs from the token side.
pub struct Custodian {
    pub module: Module,
    pub token: TokenRef,
    pub user_pin: AuthPin,
    /// The current SO PIN; `None` with --no-quorum.
    pub so_pin: Option<AuthPin>,
}

const SHARE_PURPOSE: &str = "SO PIN of a PKCS#11 token holding an offline root CA key";

/// The directory the output directory goes in (where the staging directory is made,
/// so that the final rename stays on one filesystem).
pub fn output_parent(out: &Path) -> &Path {
    out.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Runs the ceremony and returns the output directory.
pub fn run(c: Custodian, opts: &Options) -> anyhow::Result<PathBuf> {
    let profile = Profile::load(&opts.config).map_err(crate::error::usage)?;
    let parent = output_parent(&opts.out).to_path_buf();
    let mut t = transcript::Transcript::default();
    t.record("hsm-demo root CA key ceremony transcript");
    t.record(&format!("tool:     hsm-demo {}", env!("CARGO_PKG_VERSION")));
    t.record(&format!("started:  {}", transcript::utc_now()));
    t.record(&format!("module:   {}", c.module.path().display()));
    t.record(&format!(
        "token:    label={} serial={} model={} manufacturer={}",
        c.token.label, c.token.serial, c.token.model, c.token.manufacturer
    ));
    t.record(&format!(
        "profile:  {} (sha256 {})",
        opts.config_name,
        hex::encode(sha256(&fs::read(&opts.config)?))
    ));
    match opts.quorum {
        Some(q) => t.record(&format!("quorum:   {q} over the SO PIN")),
        None => t.record("quorum:   none (--no-quorum)"),
    }
    t.record("");
    println!("=== ROOT CA KEY CEREMONY ===");
    println!(
        "Token '{}' (serial {}) in {}",
        c.token.label,
        c.token.serial,
        c.module.path().display()
    );
    println!();

    // A label in use (public objects are visible without a PIN) stops the ceremony
    // before the SO PIN is tried; generation checks private objects again.
    c.module
        .public_session(&c.token)?
        .ensure_label_free(&opts.label)?;
    // The SO PIN is checked before anything is created: a wrong one stops here.
    if let Some(so) = &c.so_pin {
        let so_session = c
            .module
            .login_so(&c.token, so)
            .context("check the current SO PIN before Step 1")?;
        so_session.logout()?;
    }

    let session = c.module.login_user(&c.token, &c.user_pin)?;
    let pair = session.generate_p256(&opts.label, None)?;
    // Until the SO PIN changes, any failure undoes the key pair and leaves no output.
    let staged = stage(&c, opts, &profile, &parent, &session, &pair, &mut t);
    let Staged {
        dir: staging,
        cert_fpr,
        key,
    } = match staged {
        Ok(s) => s,
        Err(e) => {
            let _ = session.destroy_key_pair(&pair);
            return Err(e.context(
                "the ceremony stopped; the new key pair was destroyed and nothing was written",
            ));
        }
    };

    // Step 3: the quorum. Past C_SetPIN the shares are the only way to the SO role, so
    // from there on the output directory is kept whatever happens.
    let binding = Binding {
        ceremony_id: hex::encode(session.random(16)?),
        token_label: c.token.label.clone(),
        token_serial: c.token.serial.clone(),
        root_cert_sha256: cert_fpr,
    };
    match (opts.quorum, &c.so_pin) {
        (Some(q), Some(old_so)) => {
            match make_quorum(&c, q, old_so, &binding, &session, staging.path(), &mut t) {
                Ok(()) => {}
                Err(QuorumFailure::BeforeChange(e)) => {
                    // The SO PIN is unchanged; the key is fine but the ceremony is not.
                    return Err(e.context("the quorum step failed before the SO PIN changed; nothing was written (the key pair stays in the token)"));
                }
                Err(QuorumFailure::AfterChange(e)) => {
                    let kept = keep_incomplete(staging, &opts.out);
                    return Err(e.context(format!("the SO PIN WAS changed; the custodian shares are kept in {kept}")));
                }
            }
        }
        _ => t.step("[Step 3] No quorum made (--no-quorum): the SO PIN is unchanged, and whoever holds it can reset the user PIN"),
    }
    // The SO step ran in a child process, so this process's login, and with it the
    // provider key loaded for the certificate, are still valid for the transcript.
    let out = finish(opts, &key, staging, &mut t);
    drop(session);
    out
}

/// What the certificate step leaves for the rest of the ceremony.
struct Staged {
    /// The staging directory with root-ca.pem and root-ca.pub.pem.
    dir: tempfile::TempDir,
    /// SHA-256 of the certificate's DER, lowercase hex.
    cert_fpr: String,
    /// The root key through the provider (signs the transcript at the end).
    key: PKey<Private>,
}

/// Steps 1 and 2 and the root certificate, written into a staging directory.
fn stage(
    c: &Custodian,
    opts: &Options,
    profile: &Profile,
    parent: &Path,
    session: &UserSession,
    pair: &crate::token::KeyPair,
    t: &mut transcript::Transcript,
) -> anyhow::Result<Staged> {
    let uri = c.token.key_uri(&pair.label, &pair.id, "private");
    t.step(&format!(
        "[Step 1] Key pair generated: label={}, algo=EC/P-256",
        opts.label
    ));
    t.detail(&format!("id:       {}", hex::encode(&pair.id)));
    t.detail(&format!("uri:      {uri}"));
    t.detail("template: CKA_TOKEN=true CKA_PRIVATE=true CKA_SENSITIVE=true CKA_EXTRACTABLE=false CKA_SIGN=true");

    let point = session.ec_point(pair.public)?;
    let public = bridge::p256_public_key(&point)?;
    let spki_fpr = bridge::spki_sha256(&public)?;
    t.step(&format!(
        "[Step 2] Public key (hex): {}",
        hex::encode(&point)
    ));
    t.detail(&format!("SPKI SHA-256: {}", colon_hex(&spki_fpr)));

    let provider = Provider::load(c.module.path())?;
    let private = provider.private_key(&uri, &c.user_pin)?;
    let mut serial = session.random(16)?;
    // Positive and 16 bytes long: clear the sign bit, set the next one.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let cert = bridge::build_self_signed(profile, &public, &private, &serial, opts.days)?;
    let checks = bridge::check_self_signed(&cert, &public)
        .map_err(|e| anyhow::anyhow!("root certificate check failed: {e}"))?;
    let custody = session.custody(pair.private)?;
    let shortfalls = custody.shortfalls();
    if !shortfalls.is_empty() {
        bail!("custody read-back failed: {}", shortfalls.join(", "));
    }
    let der = cert
        .to_der()
        .map_err(bridge::BridgeError::openssl("encode the certificate"))?;
    let cert_fpr = colon_hex(&sha256(&der));
    let subject = profile
        .subject
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    t.step(&format!(
        "[Root CA] Self-signed certificate made by OpenSSL from {}, signed in the token",
        opts.config_name
    ));
    t.detail(&format!("subject:  {subject}"));
    t.detail(&format!("serial:   {}", hex::encode(&serial)));
    t.detail(&format!(
        "validity: {} to {} ({} days)",
        cert.not_before(),
        cert.not_after(),
        opts.days
    ));
    t.detail(&format!("SHA-256 fingerprint: {cert_fpr}"));
    t.detail(&format!("checks:   {}", checks.join(", ")));
    t.detail(&format!("custody:  {}", describe_custody(&custody)));

    let staging = tempfile::Builder::new()
        .prefix(".ceremony-partial-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a staging directory in {}", parent.display()))?;
    let pem = cert
        .to_pem()
        .map_err(bridge::BridgeError::openssl("encode the certificate"))?;
    let pub_pem = public
        .public_key_to_pem()
        .map_err(bridge::BridgeError::openssl("encode the public key"))?;
    write_file(&staging.path().join("root-ca.pem"), &pem, 0o644)?;
    write_file(&staging.path().join("root-ca.pub.pem"), &pub_pem, 0o644)?;
    Ok(Staged {
        dir: staging,
        cert_fpr: cert_fpr.replace(':', "").to_lowercase(),
        key: private,
    })
}

enum QuorumFailure {
    BeforeChange(anyhow::Error),
    AfterChange(anyhow::Error),
}

/// Step 3: a fresh SO PIN from the token RNG, split M-of-N into share files written
/// (and synced) before anything changes; the last M files are read back and
/// recombined, and only that recombined value is sent to the token as the new SO PIN.
///
/// The SO login runs in a child process (`hsm-demo __set-so-pin`, PINs on its stdin):
/// PKCS#11 refuses an SO login while the application has a read-only session open
/// (CKR_SESSION_READ_ONLY_EXISTS), and the pkcs11-provider keeps read-only sessions
/// in its pool. A separate process is a separate PKCS#11 application, as an operator's
/// SO console would be; this process keeps its user login and provider key.
fn make_quorum(
    c: &Custodian,
    q: Quorum,
    old_so: &AuthPin,
    binding: &Binding,
    session: &UserSession,
    dir: &Path,
    t: &mut transcript::Transcript,
) -> Result<(), QuorumFailure> {
    let before = QuorumFailure::BeforeChange;
    let len = c
        .module
        .max_pin_len(&c.token)
        .map_err(|e| before(e.into()))?
        .min(64)
        / 2;
    if len < 16 {
        return Err(before(anyhow::anyhow!(
            "the token allows SO PINs of at most {} characters; a quorum secret needs 32",
            len * 2
        )));
    }
    let secret = Zeroizing::new(session.random(len).map_err(|e| before(e.into()))?);
    let new_so = Zeroizing::new(hex::encode(secret.as_slice()));
    let shares = quorum::split(new_so.as_bytes(), q, binding, SHARE_PURPOSE);
    let mut files = Vec::new();
    for s in &shares {
        let name = format!("share-{}-of-{}.json", s.index, s.shares);
        let json = Zeroizing::new(serde_json::to_string_pretty(s).expect("share serialises"));
        write_file(&dir.join(&name), json.as_bytes(), 0o600).map_err(before)?;
        files.push(dir.join(name));
    }
    let subset: Vec<PathBuf> = files[files.len() - usize::from(q.threshold)..].to_vec();
    let (recovered, _) = quorum::combine(&subset).map_err(|e| before(e.into()))?;
    if recovered.as_slice() != new_so.as_bytes() {
        return Err(before(anyhow::anyhow!(
            "the share files do not recombine to the new SO PIN"
        )));
    }
    set_so_pin_in_child(c, old_so, &recovered)?;

    t.step(&format!(
        "[Step 3] Quorum created: SO PIN replaced by a fresh {len}-byte secret from the token RNG, split {q} (Shamir, GF(256)); the shares are real"
    ));
    t.detail(&format!("ceremony id: {}", binding.ceremony_id));
    for s in &shares {
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
    Ok(())
}

/// Runs `hsm-demo __set-so-pin` with both PINs on its stdin. Exit 0: changed and
/// proven; exit 5: changed but the proof login failed; anything else: unchanged.
fn set_so_pin_in_child(c: &Custodian, old: &AuthPin, new: &[u8]) -> Result<(), QuorumFailure> {
    use secrecy::ExposeSecret;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().map_err(|e| QuorumFailure::BeforeChange(e.into()))?;
    let mut child = Command::new(exe)
        .arg("--module")
        .arg(c.module.path())
        .args(["--serial", &c.token.serial, "__set-so-pin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            QuorumFailure::BeforeChange(anyhow::anyhow!("cannot start the SO step: {e}"))
        })?;
    {
        let mut stdin = child.stdin.take().expect("piped");
        let mut input = Zeroizing::new(Vec::with_capacity(160));
        input.extend_from_slice(old.expose_secret().as_bytes());
        input.push(b'\n');
        input.extend_from_slice(new);
        input.push(b'\n');
        stdin
            .write_all(&input)
            .map_err(|e| QuorumFailure::BeforeChange(e.into()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| QuorumFailure::BeforeChange(e.into()))?;
    let why = String::from_utf8_lossy(&out.stderr)
        .trim()
        .trim_start_matches("hsm-demo: ")
        .to_string();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(5) => Err(QuorumFailure::AfterChange(anyhow::anyhow!("{why}"))),
        _ => Err(QuorumFailure::BeforeChange(anyhow::anyhow!("{why}"))),
    }
}

/// Step 4: hashes of every output, the transcript, its signature by the root key, and
/// the atomic rename into place.
fn finish(
    opts: &Options,
    key: &PKey<Private>,
    staging: tempfile::TempDir,
    t: &mut transcript::Transcript,
) -> anyhow::Result<PathBuf> {
    t.step("[Step 4] Ceremony complete. Store HSM in vault.");
    let mut names: Vec<String> = fs::read_dir(staging.path())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    t.record("");
    t.record("files (SHA-256):");
    for name in &names {
        let digest = sha256(&fs::read(staging.path().join(name))?);
        t.record(&format!("  {}  {name}", hex::encode(digest)));
    }
    t.record(&format!("finished: {}", transcript::utc_now()));
    t.record("signature: transcript.sig, by the root key; check with");
    t.record(
        "  openssl dgst -sha256 -verify root-ca.pub.pem -signature transcript.sig transcript.txt",
    );
    let text = t.text().to_string();
    let sig = bridge::sign_sha256(key, |sink| Ok(sink(text.as_bytes())?))?;
    write_file(
        &staging.path().join("transcript.txt"),
        text.as_bytes(),
        0o644,
    )?;
    write_file(&staging.path().join("transcript.sig"), sig.der(), 0o644)?;

    let staged = staging.keep();
    if let Err(e) = bridge::rename_no_replace(&staged, &opts.out) {
        let _ = fs::remove_dir_all(&staged);
        bail!("cannot move the outputs into {}: {e}", opts.out.display());
    }
    for name in names
        .iter()
        .map(String::as_str)
        .chain(["transcript.txt", "transcript.sig"])
    {
        println!("         {}", opts.out.join(name).display());
    }
    Ok(opts.out.clone())
}

/// After the SO PIN changed, a failure keeps the shares: the staging directory is
/// renamed to `<out>.incomplete`.
fn keep_incomplete(staging: tempfile::TempDir, out: &Path) -> String {
    let staged = staging.keep();
    let target = PathBuf::from(format!("{}.incomplete", out.display()));
    match bridge::rename_no_replace(&staged, &target) {
        Ok(()) => target.display().to_string(),
        Err(_) => staged.display().to_string(),
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
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
