//! A CA's next CRL (RFC 5280 §5): every revoked serial from the records, DER-encoded
//! as it is read, put into a CRL that OpenSSL's X509_CRL API builds, signed in the
//! token; its number is taken from the records and only ever increases.
//!
//! The entries are encoded here rather than added as X509_REVOKED objects: that is what
//! holds a 1,000,000-entry CRL at 0.14x the time and 0.40x the peak memory of `openssl
//! ca -gencrl` over the same index (2.69 s / 236 MB against 18.89 s / 593 MB; a build
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

/// When the CRLs of one `crl` run take effect: from `this_update` (default: now) for
/// `days`, or to `next_update`; or a series of `series.0` CRLs, each `series.1` days
/// after the one before, each valid `days` (more than the interval: the windows
/// overlap, so a relying party is never without a current CRL).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub this_update: Option<i64>,
    pub next_update: Option<i64>,
    pub days: u32,
    pub series: Option<(u32, u32)>,
}

/// The windows of `schedule`, checked before any token work: the CA can sign CRLs;
/// each window starts within the CA certificate's validity and ends after it starts,
/// at a representable time and, unless `beyond_ca`, within the CA certificate's
/// validity (a relying party cannot check a CRL past its issuer's notAfter).
pub fn crl_windows(ca: &CaDir, schedule: &Schedule, beyond_ca: bool) -> Result<Vec<(i64, i64)>, CaError> {
    super::check_issuer(&ca.cert)?;
    if ca.cert.key_usage().is_some_and(|ku| !ku.contains(X509KeyUsage::CRL_SIGN)) {
        return Err(CaError::Input("the CA certificate's keyUsage lacks cRLSign: it cannot sign CRLs".into()));
    }
    let rule = super::validate::CRL_NEXT_UPDATE.name;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let start = schedule.this_update.unwrap_or(now);
    let days = i64::from(schedule.days) * 86_400;
    let windows: Vec<(i64, i64)> = match schedule.series {
        None => vec![(start, schedule.next_update.unwrap_or(start + days))],
        Some((count, interval)) => {
            let step = i64::from(interval) * 86_400;
            if count == 0 || interval == 0 {
                return Err(CaError::Input("--series and --interval must be at least 1".into()));
            }
            if days <= step {
                return Err(super::refuse(rule, format!("each CRL of the series is valid {} days, not more than the {interval}-day interval: the windows would not overlap (give --days above {interval})", schedule.days)));
            }
            (0..i64::from(count)).map(|i| (start + i * step, start + i * step + days)).collect()
        }
    };
    let (ca_from, ca_until) = bridge::validity(&ca.cert).map_err(|e| CaError::Input(e.to_string()))?;
    for &(this, next) in &windows {
        let at = crate::clock::rfc3339;
        if next <= this {
            return Err(super::refuse(rule, format!("nextUpdate {} is not after thisUpdate {}", at(next), at(this))));
        }
        if next > LAST_TIME {
            return Err(super::refuse(rule, format!("nextUpdate {} is past the year 9999, which no X.509 time holds", at(next))));
        }
        if this < ca_from {
            return Err(super::refuse(rule, format!("thisUpdate {} is before the CA certificate's notBefore ({})", at(this), ca.cert.not_before())));
        }
        if next > ca_until && !beyond_ca {
            return Err(super::refuse(
                rule,
                format!("nextUpdate {} is after the CA certificate's notAfter ({}); give an earlier one, or --allow-beyond-ca", at(next), ca.cert.not_after()),
            ));
        }
    }
    Ok(windows)
}

/// Whether the CA's CRLs cover CA certificates only (an ARL): a root whose records
/// hold only CA certificates it issued (none imported, whose kind is unknown).
pub fn only_ca_certificates(ca: &CaDir) -> Result<bool, CaError> {
    let root = ca.cert.issuer_name().to_der().ok() == ca.cert.subject_name().to_der().ok();
    if !root {
        return Ok(false);
    }
    // An imported record's kind is unknown: one is enough to say no, without reading
    // the (possibly million) others.
    if ca.db.has_imported().map_err(db_err("read the records"))? {
        return Ok(false);
    }
    let mut all_ca = true;
    ca.db
        .for_each_issued_cert(|der| all_ca &= openssl::x509::X509::from_der(der).is_ok_and(|c| bridge::is_ca(&c)))
        .map_err(db_err("read the records"))?;
    Ok(all_ca)
}

/// How `crl` writes the CRL, who asks for it (for the log), and its
/// issuingDistributionPoint.
pub struct CrlOutput<'a> {
    pub out: Option<&'a std::path::Path>,
    pub pem: bool,
    pub who: audit::Who,
    pub idp: bridge::Idp<'a>,
}

/// Makes, checks and records the CA's next CRL for a window `crl_windows` gave.
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
    inputs.insert("only_ca_certs".into(), output.idp.only_ca.into());
    if let Some(url) = output.idp.url {
        inputs.insert("distribution_point".into(), url.into());
    }
    ca.log.begin("crl", &output.who, inputs);
    ca.log.push(&audit::Entry::Crl { number, this_update: now, next_update: next, entries: revoked.count as i64 });
    ca.log.flush()?;
    let signed = (|| -> anyhow::Result<Vec<u8>> {
        let der = key.with_tbs_signer(|signer| bridge::build_crl(&ca.cert, ((now, next), number_u64, &output.idp), &entries, signer))?;
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
