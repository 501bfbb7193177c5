//! `ca-init`: makes a directory the home of a CA whose key is in a token: its
//! certificate (checked against the token key), the key's URI, and the records of a CA
//! that was run with `openssl ca` (its index.txt), if any.

use std::path::PathBuf;

use anyhow::Context as _;
use crate::bridge::X509;

use crate::ca::{self, CaDir, CaRow};
use crate::console::outln;
use crate::error::usage;
use crate::settings::Settings;

use super::KeyArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA directory (created if missing; must not hold a CA yet)
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,

    /// The CA certificate, PEM; certificates after it in the file are its chain up to
    /// the root
    #[arg(long, value_name = "CERT")]
    cert: PathBuf,

    #[command(flatten)]
    key: KeyArgs,

    /// Take over the records of a CA run with `openssl ca`: its index.txt (every V, R
    /// and E line; all or nothing)
    #[arg(long, value_name = "FILE")]
    import_index: Option<PathBuf>,

    #[command(flatten)]
    note: super::args::NoteArg,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    a.note.checked()?;
    let pem = crate::output::read_regular(&a.cert).map_err(|e| usage(format!("--cert {}: {}", a.cert.display(), crate::output::reason(&e))))?;
    let mut certs = X509::stack_from_pem(&pem).map_err(|_| usage(format!("--cert {}: not a PEM certificate", a.cert.display())))?;
    if certs.is_empty() {
        return Err(usage(format!("--cert {}: no certificate in it", a.cert.display())));
    }
    let cert = certs.remove(0);
    ca::check_issuer(&cert)?;
    ca::check_chain(&cert, &certs)?;
    let mut inputs = serde_json::Map::new();
    inputs.insert("cert_file_sha256".into(), ca::audit::hex_digest(&pem).into());
    let imported = match &a.import_index {
        Some(path) => {
            let text = crate::output::read_regular_text(path)
                .map_err(|e| usage(format!("--import-index {}: {}", path.display(), crate::output::reason(&e))))?;
            inputs.insert("index_sha256".into(), ca::audit::hex_digest(text.as_bytes()).into());
            ca::parse_index(&text).map_err(|e| usage(format!("--import-index {}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    // Lock order (lock.rs): the CA directory first, then the token store.
    let dir_lock = ca::DirLock::new(&a.ca)?;
    let result = set_up(settings, &a, &dir_lock, (&cert, &certs), (&imported, inputs));
    if result.is_err() {
        dir_lock.abandon();
    }
    result
}

/// Everything after the checks that need no token: the key, the records, the report.
fn set_up(
    settings: &Settings,
    a: &Args,
    dir_lock: &ca::DirLock,
    (cert, certs): (&X509, &[X509]),
    (imported, inputs): (&[ca::CertRecord], serde_json::Map<String, serde_json::Value>),
) -> anyhow::Result<()> {
    // The token key must be the certificate's: read its public key (no login needed).
    let (selector, uri) = a.key.selector()?;
    let (module, token, _lock) = super::open_token(settings, uri.as_ref(), super::Use::Change)?;
    let session = module.public_session(&token)?;
    let object = session.find_public_key(&selector).map_err(anyhow::Error::from)?;
    let public = crate::hsm::public_key_of(&session, object.handle, &object.kind)?;
    let key_uri = token.key_uri(&object.label, &object.id, "private");
    if !cert.public_key()?.public_eq(&public) {
        return Err(usage(format!(
            "--cert {}: its public key is not the token key {key_uri}; nothing was changed",
            a.cert.display(),
        )));
    }
    let mut chain_pem = String::new();
    for c in certs {
        chain_pem.push_str(&String::from_utf8(c.to_pem()?).context("PEM")?);
    }
    let row = CaRow { cert_der: cert.to_der()?, key_uri: key_uri.clone(), chain_pem };
    let mut inputs = inputs;
    inputs.insert("token".into(), serde_json::json!({ "label": token.label, "serial": token.serial }));
    CaDir::init(dir_lock, &row, imported, inputs, a.note.note.as_deref())?;
    // The certificate beside its key (a public object: no PIN).
    let stored = crate::hsm::certificate_parts(cert)
        .and_then(|parts| Ok(module.rw_public_session(&token)?.store_certificate(&object, &parts)?));
    outln!("CA directory {} holds CA {}", a.ca.display(), crate::ca::subject_line(cert.subject_name()))?;
    outln!("  key:      {key_uri}")?;
    match stored {
        Ok(crate::token::cert::Stored::New(uri) | crate::token::cert::Stored::AlreadyThere(uri)) => outln!("  in token: {uri}")?,
        Err(e) => crate::console::note(&format!("the certificate was not stored in the token: {e:#}")),
    }
    outln!("  chain:    {} certificate(s) above it", certs.len())?;
    if a.import_index.is_some() {
        let revoked = imported.iter().filter(|r| r.revoked_at.is_some()).count();
        outln!("  imported: {} record(s) from index.txt, {revoked} revoked", imported.len())?;
    }
    Ok(())
}
