//! The few DER operations hsm-demo does itself (X.690 §8.1): reading a signed
//! structure's parts, and encoding INTEGERs, times and TLVs for CRL entries and
//! extensions OpenSSL's API has no builder for.
/// The length of the TLV at the start of `b` (tag, length octets and contents).
pub fn tlv_len(b: &[u8]) -> Option<usize> {
    let (header, len) = header(b)?;
    let total = header.checked_add(len)?;
    (total <= b.len()).then_some(total)
}

/// The contents of the TLV at the start of `b`.
pub fn contents(b: &[u8]) -> Option<&[u8]> {
    let (header, len) = header(b)?;
    b.get(header..header.checked_add(len)?)
}

fn header(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = b.get(2..2 + n)?.iter().fold(0usize, |a, d| (a << 8) | usize::from(*d));
    Some((2 + n, len))
}

/// An INTEGER from unsigned big-endian bytes (a leading zero byte added when the
/// top bit is set; leading zero bytes dropped).
pub fn integer(unsigned: &[u8]) -> Vec<u8> {
    let start = unsigned.iter().position(|b| *b != 0).unwrap_or(unsigned.len().saturating_sub(1));
    let mut v = Vec::with_capacity(unsigned.len() + 1);
    if unsigned.get(start).is_none_or(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(unsigned.get(start..).unwrap_or_default());
    tlv(0x02, &v)
}

/// Time (RFC 5280 §5.1.2.4, §4.1.2.5): UTCTime YYMMDDHHMMSSZ for 1950 to 2049,
/// GeneralizedTime YYYYMMDDHHMMSSZ otherwise.
pub fn time(unix: i64) -> anyhow::Result<Vec<u8>> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix)?;
    let (y, rest) = (
        t.year(),
        format!("{:02}{:02}{:02}{:02}{:02}Z", u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()),
    );
    Ok(if (1950..2050).contains(&y) {
        tlv(0x17, format!("{:02}{rest}", y % 100).as_bytes())
    } else {
        tlv(0x18, format!("{y:04}{rest}").as_bytes())
    })
}

/// The to-be-signed part and the AlgorithmIdentifier of a signed structure
/// `SEQUENCE { tbs, algorithm, BIT STRING }`, each as a whole TLV.
pub fn signed_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let body = contents(der)?;
    let (tbs, rest) = body.split_at(tlv_len(body)?);
    Some((tbs, &rest[..tlv_len(rest)?]))
}

/// `SEQUENCE { tbs, algorithm, BIT STRING signature }` (no unused bits).
pub fn signed(tbs: &[u8], alg: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(signature);
    let mut inner = Vec::with_capacity(tbs.len() + alg.len() + bits.len() + 8);
    inner.extend_from_slice(tbs);
    inner.extend_from_slice(alg);
    inner.extend(tlv(0x03, &bits));
    tlv(0x30, &inner)
}

pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lengths_round_trip_short_and_long_forms() {
        for n in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let t = super::tlv(0x04, &vec![7u8; n]);
            assert_eq!(super::tlv_len(&t), Some(t.len()), "{n}");
            assert_eq!(super::contents(&t).map(<[u8]>::len), Some(n));
        }
        assert_eq!(super::tlv_len(&[0x30, 0x05, 1, 2]), None, "truncated");
    }

    #[test]
    fn integers_and_times_as_der_wants_them() {
        assert_eq!(super::integer(&[0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(super::integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(super::integer(&[0x00]), [0x02, 0x01, 0x00]);
        assert_eq!(super::time(1_704_164_645).unwrap(), [&[0x17, 13][..], b"240102030405Z"].concat());
        assert_eq!(super::time(2_556_143_999).unwrap(), [&[0x18, 15][..], b"20501231235959Z"].concat());
    }
}

/// The extensions of a DER Certificate, in order: each one's OID (the contents of its
/// OBJECT IDENTIFIER) and whether it is marked critical (RFC 5280 §4.1, §4.2).
pub fn extensions(cert: &[u8]) -> Option<Vec<(&[u8], bool)>> {
    let (tbs, _) = signed_parts(cert)?;
    let mut fields = contents(tbs)?;
    let mut out = Vec::new();
    while !fields.is_empty() {
        let n = tlv_len(fields)?;
        if fields[0] == 0xa3 {
            let mut list = contents(contents(&fields[..n])?)?;
            while !list.is_empty() {
                let m = tlv_len(list)?;
                let mut ext = contents(&list[..m])?;
                let oid_len = tlv_len(ext)?;
                let oid = contents(&ext[..oid_len])?;
                ext = &ext[oid_len..];
                let critical = ext.first() == Some(&0x01) && contents(ext)? == [0xff];
                out.push((oid, critical));
                list = &list[m..];
            }
        }
        fields = &fields[n..];
    }
    Some(out)
}

/// An OID's contents in dotted form (X.690 §8.19).
pub fn oid_text(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for b in oid {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
    }
    arcs.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod more_tests {
    #[test]
    fn oids_in_dotted_form() {
        assert_eq!(super::oid_text(&[0x55, 0x1d, 0x13]), "2.5.29.19");
        assert_eq!(super::oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]), "1.2.840.113549");
    }
}
