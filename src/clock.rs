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
