//! `issue`: a certificate from a PKCS#10 request and a profile, signed by a CA's token
//! key after every rule holds on the finished certificate (see `ca::issue`).

use std::path::{Path, PathBuf};

use crate::bridge::X509Req;

use crate::ca::{self, CaDir, IssueOptions, IssueProfile};
use crate::console::outln;
use crate::error::usage;
use crate::output;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(after_long_help = crate::ca::validate::rules_help())]
pub struct Args {
    /// The CA directory (a key ceremony's --out, or one made by ca-init)
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,

    /// The certificate request (PKCS#10, PEM or DER)
    #[arg(long, value_name = "FILE", required_unless_present = "cross_sign")]
    csr: Option<PathBuf>,

    /// Cross-sign this existing CA certificate (PEM): a certificate for its subject,
    /// public key and subject key identifier, with its basicConstraints (pathLen as
    /// in it unless --path-len), under this CA. Its key's proof: --csr from 'csr
    /// --from-cert', or the certificate's own signature if it is self-signed
    #[arg(long, value_name = "CERT")]
    cross_sign: Option<PathBuf>,

    /// subordinate-ca, tls-server, tls-client (openssl-conf/profiles/), or the path of
    /// an OpenSSL config with an [hsm_demo_profile] section
    #[arg(long, value_name = "PROFILE")]
    profile: String,

    /// pathLenConstraint of a CA certificate (default 0); must be below the issuer's
    #[arg(long, value_name = "N")]
    path_len: Option<u32>,

    /// Days of validity (default: the profile's); must end within the issuer's
    #[arg(long, value_name = "N")]
    days: Option<u32>,

    /// Write the certificate (PEM) to FILE instead of stdout (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Also write the issuer chain (the CA certificate and those above it, PEM) to FILE
    #[arg(long, value_name = "FILE")]
    chain: Option<PathBuf>,

    /// Where the certificate goes: aws-pca checks every rule AWS Private CA enforces on
    /// an imported CA certificate and its chain before the token signs
    #[arg(long, value_enum, value_name = "TARGET")]
    target: Option<Target>,

    #[command(flatten)]
    additions: super::args::AdditionArgs,

    #[command(flatten)]
    note: super::args::NoteArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// AWS Private CA's ImportCertificateAuthorityCertificate
    AwsPca,
}

/// A request from a file: PEM or DER PKCS#10.
/// The whole input must be the request: DER with nothing after it, or one PEM block
/// whose contents are exactly one DER request.
pub fn read_request(path: &Path) -> anyhow::Result<X509Req> {
    let bytes = output::read_regular(path).map_err(|e| usage(format!("--csr {}: {}", path.display(), output::reason(&e))))?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        crate::bridge::pem_contents(&bytes, "CERTIFICATE REQUEST")
            .or_else(|| crate::bridge::pem_contents(&bytes, "NEW CERTIFICATE REQUEST"))
            .ok_or_else(|| {
                usage(format!("--csr {}: not a PKCS#10 certificate request (PEM or DER; a PEM file holds one CERTIFICATE REQUEST block)", path.display()))
            })?
    } else {
        bytes
    };
    let req = X509Req::from_der(&der);
    crate::bridge::clear_openssl_errors();
    let req = req.map_err(|_| usage(format!("--csr {}: not a PKCS#10 certificate request (PEM or DER)", path.display())))?;
    let used = req.to_der().map_or(0, |d| d.len());
    if used != der.len() {
        return Err(usage(format!(
            "--csr {}: {} bytes follow the request's DER; a request file holds the request only",
            path.display(),
            der.len().saturating_sub(used)
        )));
    }
    Ok(req)
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let note = a.note.checked()?.map(String::from);
    let profile = IssueProfile::load(&a.profile)?;
    let aws_pca = a.target == Some(Target::AwsPca) || profile.target.as_deref() == Some("aws-pca");
    profile.try_on_throwaway(aws_pca)?;
    let req = a.csr.as_deref().map(read_request).transpose()?;
    let cross = match &a.cross_sign {
        Some(path) => {
            let pem = output::read_regular(path).map_err(|e| usage(format!("--cross-sign {}: {}", path.display(), output::reason(&e))))?;
            Some(crate::bridge::X509::from_pem(&pem).map_err(|_| usage(format!("--cross-sign {}: not a PEM certificate", path.display())))?)
        }
        None => None,
    };
    let applicant = match (&cross, &req) {
        (Some(cert), request) => ca::Applicant::CrossSign { cert, request: request.as_ref() },
        (None, Some(req)) => ca::Applicant::Request(req),
        (None, None) => return Err(usage("give --csr FILE, or --cross-sign CERT")),
    };
    // Both outputs are checked before anything is recorded or signed: distinct and new.
    if let (Some(out), Some(chain)) = (&a.out, &a.chain) {
        if output::same_file(out, chain) {
            return Err(usage(format!("--out and --chain name the same file ({}); nothing was issued", out.display())));
        }
    }
    for path in [&a.out, &a.chain].into_iter().flatten() {
        output::refuse_existing(path, if Some(path) == a.out.as_ref() { "--out" } else { "--chain" })?;
    }
    let mut ca = CaDir::open(&a.ca)?;
    let additions = ca::Additions::load(&a.ca, &a.additions.given())?;
    let constrains = !a.additions.permit.is_empty() || !a.additions.exclude.is_empty();
    if !profile.ca && constrains {
        return Err(usage(format!("--permit and --exclude apply to CA profiles, not {}; nothing was issued", profile.name)));
    }
    let (hsm, selector) = super::login_for_key(settings, &ca.key_uri, if profile.ca { super::Use::Change } else { super::Use::Login })?;
    let key = hsm.signing_key(&selector)?;
    if aws_pca && a.target.is_none() {
        crate::console::note(&format!("profile {} names target aws-pca: AWS Private CA's import rules are checked before signing", profile.name));
    }
    let opts = IssueOptions { profile, path_len: a.path_len, days: a.days, note, out: a.out.clone(), additions, aws_pca };
    let issued = ca::issue(&mut ca, &hsm, &key, &applicant, &opts)?;
    ca.log.checkpoint(&key)?;
    // A CA certificate whose key is in this token goes beside it.
    let in_token = match opts.profile.ca {
        true => match hsm.key_of(&issued.cert.public_key()?)? {
            Some(k) => Some(hsm.store_certificate(&k, &issued.cert)),
            None => None,
        },
        false => None,
    };
    let pem = issued.cert.to_pem()?;
    // The record holds the certificate already: a write failing here loses nothing
    // (`list-issued --serial S --pem` prints it again).
    match &a.out {
        Some(path) => output::publish_file(path, &pem, 0o644, "--out")?,
        None => crate::console::write_bytes(&pem)?,
    }
    if let Some(path) = &a.chain {
        output::publish_file(path, &ca.chain_pem()?, 0o644, "--chain")?;
    }
    if a.out.is_some() {
        outln!("Issued serial {} ({}, profile {}), valid until {}", issued.serial, ca::subject_line(issued.cert.subject_name()), opts.profile.name, issued.cert.not_after())?;
        outln!("  checks: {}", issued.checks.join("; "))?;
    }
    match in_token {
        Some(Ok(crate::token::cert::Stored::New(uri) | crate::token::cert::Stored::AlreadyThere(uri))) if a.out.is_some() => outln!("  in token: {uri}")?,
        Some(Err(e)) => crate::console::note(&format!("the certificate was not stored in the token: {e:#}")),
        _ => {}
    }
    Ok(())
}
