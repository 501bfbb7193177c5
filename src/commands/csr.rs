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
    #[arg(long, value_name = "DN", required_unless_present = "from_cert")]
    subject: Option<String>,

    /// A request for this existing CA certificate's subject and key (PEM; the key must
    /// be the token key): what another CA cross-signs (issue --cross-sign CERT --csr)
    #[arg(long, value_name = "CERT", conflicts_with_all = ["subject", "san"])]
    from_cert: Option<PathBuf>,

    /// A subjectAltName to request: DNS:name, IP:address, email:address or URI:uri
    /// (repeat for more)
    #[arg(long, value_name = "TYPE:VALUE")]
    san: Vec<String>,

    /// Write the request (PEM) to FILE instead of stdout (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let from = match &a.from_cert {
        Some(path) => {
            let pem = output::read_regular(path).map_err(|e| crate::error::usage(format!("--from-cert {}: {}", path.display(), output::reason(&e))))?;
            Some(bridge::X509::from_pem(&pem).map_err(|_| crate::error::usage(format!("--from-cert {}: not a PEM certificate", path.display())))?)
        }
        None => None,
    };
    let subject = match (&from, &a.subject) {
        (Some(cert), _) => cert.subject_name().to_owned()?,
        (None, Some(dn)) => ca::parse_dn(dn)?,
        (None, None) => return Err(crate::error::usage("give --subject DN or --from-cert CERT")),
    };
    let sans = a.san.iter().map(|s| ca::parse_alt_name(s)).collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &a.out {
        output::refuse_existing(path, "--out")?;
    }
    let (hsm, selector) = a.key.login(settings)?;
    let key = hsm.signing_key(&selector)?;
    if let Some(cert) = &from {
        if !cert.public_key()?.public_eq(key.public()) {
            return Err(crate::error::usage(format!(
                "--from-cert {}: its public key is not the token key's; nothing was signed",
                a.from_cert.as_deref().unwrap_or_else(|| std::path::Path::new("")).display()
            )));
        }
    }
    let req = key.with_tbs_signer(|signer| bridge::build_csr(&subject, &sans, key.public(), signer))?;
    let pem = req.to_pem()?;
    match &a.out {
        Some(path) => output::publish_file(path, &pem, 0o644, "--out")?,
        None => crate::console::write_bytes(&pem)?,
    }
    Ok(())
}
