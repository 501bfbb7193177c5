//! `csr`: a PKCS#10 certificate request for a token key, built by OpenSSL (X509_REQ)
//! and signed in the token through the provider.

use std::path::PathBuf;

use crate::bridge;
use crate::ca;
use crate::output;
use crate::settings::Settings;

use super::KeyArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,

    /// Subject, in the form `openssl req -subj` takes: /C=US/O=Example/CN=Example Issuing CA 1
    #[arg(long, value_name = "DN")]
    subject: String,

    /// A subjectAltName to request: DNS:name, IP:address, email:address or URI:uri
    /// (repeat for more)
    #[arg(long, value_name = "TYPE:VALUE")]
    san: Vec<String>,

    /// Write the request (PEM) to FILE instead of stdout (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let subject = ca::parse_dn(&a.subject)?;
    let sans = a.san.iter().map(|s| ca::parse_alt_name(s)).collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &a.out {
        output::refuse_existing(path, "--out")?;
    }
    let (hsm, selector) = a.key.login(settings)?;
    let key = hsm.signing_key(&selector)?;
    let req = key.with_tbs_signer(|signer| bridge::build_csr(&subject, &sans, key.public(), signer))?;
    let pem = req.to_pem()?;
    match &a.out {
        Some(path) => output::publish_file(path, &pem, 0o644, "--out")?,
        None => crate::console::write_bytes(&pem)?,
    }
    Ok(())
}
