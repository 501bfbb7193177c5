//! A CA's next CRL (RFC 5280 §5): every revoked serial from the records, DER-encoded
//! as it is read, put into a CRL that OpenSSL's X509_CRL API builds, signed in the
//! token; its number is taken from the records and only ever increases.
//!
//! The entries are encoded here rather than added as X509_REVOKED objects: that is what
//! holds a 1,000,000-entry CRL at 0.32x the time and 0.40x the peak memory of `openssl
//! ca -gencrl` over the same index (4.85 s / 235 MB against 15.28 s / 593 MB; a build
//! with one X509_REVOKED per entry took 16.7 s and 950 MB: `bash scripts/bench-ca.sh`,
//! README "Benchmarks").

use openssl::x509::{X509Crl, X509KeyUsage};

use crate::bridge::{self, der, RevokedEntries};
use crate::hsm::SigningKey;

use super::record::CrlReason;
use super::{audit, db_err, CaDir, CaError};

/// CRLs with up to this many entries are also parsed and checked by OpenSSL as a whole.
const PARSE_CHECK_ENTRIES: usize = 100_000;

/// The revokedCertificates of a CRL, DER-encoded as they are added: a million entries
/// take about 66 MB here, where as many X509_REVOKED objects took about 900 MB.
#[derive(Default)]
struct RevokedList {
    der: Vec<u8>,
    count: usize,
}

impl RevokedList {
    /// One entry: the serial (unsigned big-endian), the revocation time, and the
    /// CRLReason (None: no reasonCode extension, as RFC 5280 §5.3.1 recommends for
    /// unspecified).
    fn push(&mut self, serial: &[u8], revoked_at: i64, reason: Option<CrlReason>) -> anyhow::Result<()> {
        let mut entry = Vec::with_capacity(48);
        entry.extend(der::integer(serial));
        entry.extend(der::time(revoked_at)?);
        if let Some(code) = reason.and_then(CrlReason::entry_code) {
            // Extensions ::= SEQUENCE { Extension { extnID 2.5.29.21, extnValue OCTET
            // STRING { ENUMERATED code } } }
            entry.extend_from_slice(&[0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, code]);
        }
        self.der.extend(der::tlv(0x30, &entry));
        self.count += 1;
        Ok(())
    }
}

/// A CRL made and recorded.
pub struct Crl {
    /// The CRL as the command writes it (DER, or PEM).
    pub bytes: Vec<u8>,
    pub number: i64,
    pub entries: usize,
}

/// The latest time an X.509 time can hold: 9999-12-31T23:59:59Z (RFC 5280 §4.1.2.5).
const LAST_TIME: i64 = 253_402_300_799;

/// The window of a CRL made now for `days`, checked before any token work: the CA can
/// sign CRLs, and nextUpdate is representable and, unless `beyond_ca`, within the CA
/// certificate's validity (a relying party cannot check a CRL past its issuer's
/// notAfter).
pub fn crl_window(ca: &CaDir, days: u32, beyond_ca: bool) -> Result<(i64, i64), CaError> {
    super::check_issuer(&ca.cert)?;
    if ca.cert.key_usage().is_some_and(|ku| !ku.contains(X509KeyUsage::CRL_SIGN)) {
        return Err(CaError::Input("the CA certificate's keyUsage lacks cRLSign: it cannot sign CRLs".into()));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let next = now + i64::from(days) * 86_400;
    if next > LAST_TIME {
        return Err(super::refuse(super::validate::CRL_NEXT_UPDATE.name, format!("--days {days} puts nextUpdate past the year 9999, which no X.509 time holds")));
    }
    let (_, ca_until) = bridge::validity(&ca.cert).map_err(|e| CaError::Input(e.to_string()))?;
    if next > ca_until && !beyond_ca {
        return Err(super::refuse(
            super::validate::CRL_NEXT_UPDATE.name,
            format!(
                "--days {days} puts nextUpdate after the CA certificate's notAfter ({}); give fewer days, or --allow-beyond-ca",
                ca.cert.not_after()
            ),
        ));
    }
    Ok((now, next))
}

/// How `crl` writes the CRL, and who asks for it (for the log).
pub struct CrlOutput<'a> {
    pub out: Option<&'a std::path::Path>,
    pub pem: bool,
    pub who: audit::Who,
}

/// Makes, checks and records the CA's next CRL for the window `crl_window` gave.
pub fn make_crl(ca: &mut CaDir, key: &SigningKey<'_>, (now, next): (i64, i64), output: &CrlOutput<'_>) -> anyhow::Result<Crl> {
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
    let number_u64 = u64::try_from(number)?;
    let entries = RevokedEntries { der: &revoked.der, count: revoked.count };
    // The log says which CRL is about to be signed before the token signs it.
    let mut inputs = serde_json::Map::new();
    inputs.insert("number".into(), number.into());
    ca.log.begin("crl", &output.who, inputs);
    ca.log.push(&audit::Entry::Crl { number, this_update: now, next_update: next, entries: revoked.count as i64 });
    ca.log.flush()?;
    let signed = (|| -> anyhow::Result<Vec<u8>> {
        let der = key.with_tbs_signer(|signer| bridge::build_crl(&ca.cert, (now, next), number_u64, &entries, signer))?;
        // The token's signature was checked over the exact TBSCertList as it was made. Up
        // to PARSE_CHECK_ENTRIES, OpenSSL also parses the whole CRL and checks it under the
        // CA certificate; past that, building as many X509_REVOKED objects would cost more
        // than the CRL itself.
        if revoked.count <= PARSE_CHECK_ENTRIES {
            let crl = X509Crl::from_der(&der).map_err(|_| CaError::Defect("OpenSSL cannot parse the CRL it built".into()))?;
            if !crl.verify(&*ca.cert.public_key()?)? {
                return Err(CaError::Defect("the token's signature on the CRL does not verify with the CA's public key".into()).into());
            }
        }
        Ok(der)
    })();
    let der = match signed {
        Ok(der) => der,
        Err(e) => {
            ca.log.abandon(&format!("{e:#} (CRL number {number} is not used)"), Vec::new())?;
            return Err(e);
        }
    };
    ca.db
        .record_crl(number, now, next, revoked.count, &openssl::sha::sha256(&der))
        .map_err(db_err("record the CRL"))?;
    let bytes = if output.pem { bridge::pem("X509 CRL", &der) } else { der.clone() };
    let mut outputs = serde_json::Map::new();
    outputs.insert("number".into(), number.into());
    outputs.insert("crl_sha256".into(), audit::hex_digest(&der).into());
    if let Some(out) = output.out {
        audit::record_output(&mut outputs, out, &bytes);
    }
    ca.log.commit_before_checkpoint(outputs);
    Ok(Crl { bytes, number, entries: revoked.count })
}
