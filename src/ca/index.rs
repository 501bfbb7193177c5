//! `openssl ca`'s database, `index.txt` (the format `openssl ca` writes: one line per
//! certificate, six tab-separated fields: status V/R/E, expiry, revocation
//! `date[,reason]`, serial in hex, file name, subject), read into CA records.

use super::db::CertRecord;
use super::record::{CertState, CrlReason};
use super::{parse_serial, CaError};

fn bad(why: String) -> CaError {
    CaError::Input(why)
}

/// `YYMMDDHHMMSSZ` (UTCTime, RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY) or
/// `YYYYMMDDHHMMSSZ` (GeneralizedTime) as Unix time.
fn parse_time(t: &str) -> Option<i64> {
    let t = t.strip_suffix('Z')?;
    let (year, rest) = match t.len() {
        12 => {
            let yy: i32 = t[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &t[2..])
        }
        14 => (t[..4].parse().ok()?, &t[4..]),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| rest.get(r)?.parse::<u8>().ok();
    let month = time::Month::try_from(n(0..2)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, n(2..4)?).ok()?;
    let t = time::Time::from_hms(n(4..6)?, n(6..8)?, n(8..10)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}

/// Every line of an index.txt as a record (`imported`); any malformed line fails the
/// whole import, naming its line number.
pub fn parse_index(text: &str) -> Result<Vec<CertRecord>, CaError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 6 {
            return Err(bad(format!("index line {n}: {} fields, not the 6 of openssl ca's index.txt", f.len())));
        }
        let not_after = parse_time(f[1]).ok_or_else(|| bad(format!("index line {n}: expiry '{}' is not a time", f[1])))?;
        let serial = parse_serial(f[3]).map_err(|e| bad(format!("index line {n}: {e}")))?;
        if serial.trim_start_matches('0').is_empty() {
            return Err(bad(format!(
                "index line {n}: serial {} is zero, and RFC 5280 §4.1.2.2 requires a positive serial; nothing was imported",
                f[3]
            )));
        }
        if !seen.insert(serial.clone()) {
            return Err(bad(format!("index line {n}: serial {serial} appears twice")));
        }
        let (revoked_at, reason) = match f[0] {
            "V" | "E" => (None, None),
            "R" => {
                let (when, why) = match f[2].split_once(',') {
                    Some((w, r)) => (w, Some(r)),
                    None => (f[2], None),
                };
                let at = parse_time(when).ok_or_else(|| bad(format!("index line {n}: revocation time '{when}' is not a time")))?;
                let reason = match why {
                    None => None,
                    Some(r) => Some(
                        CrlReason::from_name(r)
                            .ok_or_else(|| bad(format!("index line {n}: revocation reason '{r}' is not one this CA records")))?,
                    ),
                };
                (Some(at), reason.filter(|c| *c != CrlReason::Unspecified))
            }
            other => return Err(bad(format!("index line {n}: status '{other}' is not V, R or E"))),
        };
        out.push(CertRecord {
            serial,
            state: CertState::Imported,
            subject: f[5].to_string(),
            profile: None,
            not_before: None,
            not_after,
            revoked_at,
            reason,
            cert_der: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_valid_revoked_and_expired_lines() {
        let text = "V\t351231235959Z\t\t01\tunknown\t/CN=a\n\
                    R\t351231235959Z\t240102030405Z,keyCompromise\t0A1B\tunknown\t/CN=b\n\
                    E\t200101000000Z\t\tFF\tunknown\t/CN=c\n";
        let r = parse_index(text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].serial, "0A1B");
        assert_eq!(r[1].reason, Some(CrlReason::KeyCompromise));
        assert_eq!(r[1].revoked_at, Some(1_704_164_645));
        assert_eq!(r[0].not_after, 2_082_758_399);
        assert!(r[2].revoked_at.is_none());
    }

    #[test]
    fn a_bad_line_fails_the_import_with_its_number() {
        let e = parse_index("V\t351231235959Z\t\t01\tunknown\t/CN=a\nX\tbad\n").unwrap_err();
        assert!(e.to_string().starts_with("index line 2:"), "{e}");
        let e = parse_index("V\t351231235959Z\t\t01\tunknown\t/CN=a\nV\t351231235959Z\t\t1\tunknown\t/CN=b\n").unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
    }
}
