//! UTC time as the records and transcripts write it.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// UTC now, RFC 3339 to the second.
pub fn utc_now() -> String {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns is valid");
    now.format(&Rfc3339).expect("RFC 3339 formats any UTC time")
}

/// UTC now as a compact file-name stamp: 20261122T165501Z.
pub fn utc_stamp() -> String {
    utc_now().replace(['-', ':'], "")
}

/// A Unix time as RFC 3339 UTC.
pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{t} (Unix time)"))
}

/// A UTC time as a user gives it: `2027-01-31` (midnight UTC) or
/// `2027-01-31T12:00:00Z`. None if it is neither.
pub fn parse_utc(text: &str) -> Option<i64> {
    let (date, clock) = match text.split_once('T') {
        Some((d, c)) => (d, Some(c.strip_suffix('Z')?)),
        None => (text, None),
    };
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i32>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let date = time::Date::from_calendar_date(y, time::Month::try_from(u8::try_from(m).ok()?).ok()?, u8::try_from(day).ok()?).ok()?;
    let (h, min, s) = match clock {
        None => (0, 0, 0),
        Some(c) => {
            let mut p = c.splitn(3, ':').map(|x| x.parse::<u8>().ok());
            (p.next()??, p.next()??, p.next()??)
        }
    };
    let t = time::Time::from_hms(h, min, s).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}
