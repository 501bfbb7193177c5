//! `crl`: a CRL (RFC 5280 §5) of every revoked certificate of a CA directory, built
//! with OpenSSL's X509_CRL API and signed in the token; its number is taken from the
//! records and only ever increases.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::bridge::{self, RevokedList};
use crate::ca::{db_err, CaDir};
use crate::console::{out, outln};
use crate::error::usage;
use crate::output;
use crate::settings::Settings;

use super::KeyArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA directory
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,

    /// Days until nextUpdate
    #[arg(long, value_name = "N", default_value_t = 30)]
    days: u32,

    /// Write the CRL (PEM) to FILE instead of stdout (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Write DER instead of PEM
    #[arg(long)]
    der: bool,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    if a.days == 0 {
        return Err(usage("--days must be at least 1"));
    }
    if let Some(path) = &a.out {
        output::refuse_existing(path, "--out")?;
    }
    let mut ca = CaDir::open(&a.ca)?;
    crate::ca::check_issuer(&ca.cert)?;
    if ca.cert.key_usage().is_some_and(|ku| !ku.contains(openssl::x509::X509KeyUsage::CRL_SIGN)) {
        return Err(usage("the CA certificate's keyUsage lacks cRLSign: it cannot sign CRLs"));
    }
    let (hsm, selector) = KeyArgs::uri(&ca.key_uri).login(settings)?;
    let key = hsm.signing_key(&selector)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let next = now + i64::from(a.days) * 86_400;
    // Every revoked serial, straight from the records into DER (serial order).
    let mut revoked = RevokedList::default();
    let mut bad = None;
    ca.db
        .for_each_revoked(|serial, at, reason| {
            if bad.is_none() {
                if let Err(e) = hex::decode(serial).map_err(anyhow::Error::from).and_then(|s| revoked.push(&s, at, reason)) {
                    bad = Some(format!("serial {serial}: {e}"));
                }
            }
        })
        .map_err(db_err("read revocations"))?;
    if let Some(why) = bad {
        anyhow::bail!("CA records: {why}");
    }
    let number = ca.db.next_crl_number().map_err(db_err("take the next CRL number"))?;
    let number_u64 = u64::try_from(number).context("CRL number")?;
    let conf = bridge::crl_extensions().map_err(anyhow::Error::msg)?;
    let der = key.with_tbs_signer(|signer| {
        bridge::build_crl(&ca.cert, (now, next), number_u64, &revoked, (&conf, "crl_ext"), signer)
    })?;
    // The token's signature was checked over the exact TBSCertList as it was made. Up to
    // PARSE_CHECK_ENTRIES, OpenSSL also parses the whole CRL and checks it under the CA
    // certificate; past that, building as many X509_REVOKED objects would cost more
    // than the CRL itself (README, "Benchmarks").
    if revoked.len() <= PARSE_CHECK_ENTRIES {
        let crl = openssl::x509::X509Crl::from_der(&der).context("OpenSSL cannot parse the CRL it built")?;
        if !crl.verify(&*ca.cert.public_key()?)? {
            anyhow::bail!("the token's signature on the CRL does not verify with the CA's public key");
        }
    }
    ca.db
        .record_crl(number, now, next, revoked.len(), &openssl::sha::sha256(&der))
        .map_err(db_err("record the CRL"))?;
    let bytes = if a.der { der } else { pem("X509 CRL", &der) };
    match &a.out {
        Some(path) => {
            output::publish_file(path, &bytes, 0o644, "--out")?;
            outln!("CRL number {number}: {} revoked certificate(s), next update in {} days", revoked.len(), a.days)?;
        }
        None if a.der => crate::console::write_bytes(&bytes)?,
        None => out!("{}", String::from_utf8_lossy(&bytes))?,
    }
    Ok(())
}

/// CRLs with up to this many entries are also parsed and checked by OpenSSL as a whole.
const PARSE_CHECK_ENTRIES: usize = 100_000;

/// PEM (RFC 7468): base64 in lines of 64 characters.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = openssl::base64::encode_block(der);
    let mut out = Vec::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.extend_from_slice(format!("-----BEGIN {label}-----\n").as_bytes());
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
    out
}
