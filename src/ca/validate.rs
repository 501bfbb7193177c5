//! The rules every value must pass before the token is asked to sign: names (dNSName,
//! rfc822Name, URI, iPAddress), subject attributes, subject keys, and what a profile
//! builds. Each rule has a name (the refusal quotes it) and the text it comes from, as
//! zlint's lints do; `RULES` lists them (README, "Issuance rules").
//!
//! A refusal is exit 2, one line: the rule's name and the offending value with its
//! control characters escaped; nothing recorded, nothing written.

use std::net::IpAddr;

use crate::bridge::{self, der, AltName, PKey, Public};
use crate::console::escape;

use super::{refuse, CaError};

/// A rule: the name a refusal quotes, and its source.
pub struct Rule {
    pub name: &'static str,
    pub source: &'static str,
}

pub const DNS_NAME: Rule = Rule { name: "dns-name", source: "RFC 5280 §4.2.1.6; RFC 1034 §3.5 preferred name syntax; RFC 5890 A-labels" };
pub const WILDCARD: Rule = Rule { name: "dns-wildcard", source: "RFC 6125 §6.4.3; CA/B BR §7.1.2.7.12: only as the whole leftmost label, where the profile allows it" };
pub const EMAIL: Rule = Rule { name: "rfc822-name", source: "RFC 5280 §4.2.1.6; RFC 5321 §4.1.2 Mailbox (dot-atom local part)" };
pub const URI: Rule = Rule { name: "uri", source: "RFC 5280 §4.2.1.6; RFC 3986 §3: an absolute URI with a scheme" };
pub const SPIFFE: Rule = Rule { name: "spiffe-id", source: "SPIFFE ID specification §2 (trust domain, path segments)" };
pub const IP: Rule = Rule { name: "ip-address", source: "RFC 5280 §4.2.1.6: 4 octets (IPv4) or 16 (IPv6)" };
pub const SUBJECT: Rule = Rule { name: "subject-attribute", source: "RFC 5280 Appendix A upper bounds; X.520; ISO 3166 alpha-2 countries" };
pub const EMPTY_SUBJECT: Rule = Rule { name: "empty-subject", source: "RFC 5280 §4.1.2.6, §4.2.1.6: an empty subject needs a critical subjectAltName" };
pub const SUBJECT_KEY: Rule = Rule { name: "subject-key", source: "RFC 8017 §3.1 (RSA e odd, 65537 or more; 2048-16384 bits); RFC 5480 §2.1.1 (named curves P-256/384/521, point on the curve); RFC 8410 (Ed25519)" };
pub const PROFILE_BUILDS: Rule = Rule { name: "profile-builds", source: "the profile must build a certificate (OpenSSL's X509V3_EXT_add_nconf) on a throwaway key" };
pub const CA_KEY_USAGE: Rule = Rule { name: "key-usage-ca-only", source: "RFC 5280 §4.2.1.3, §4.2.1.9: keyCertSign and cRLSign only with cA TRUE" };
pub const NAME_CONSTRAINTS: Rule = Rule { name: "name-constraints-ca-only", source: "RFC 5280 §4.2.1.10: nameConstraints only in CA certificates" };
pub const CRITICAL: Rule = Rule { name: "critical-extension", source: "RFC 5280 §4.2: a critical extension relying parties do not recognise makes them reject the certificate; one instance per extension" };
pub const CA_VALID: Rule = Rule { name: "ca-valid-now", source: "RFC 5280 §6.1.3 (a)(2): the issuer's certificate must be valid at the time of use" };
pub const REQUEST_EXTENSIONS: Rule = Rule { name: "request-extensions", source: "RFC 2986 §4.1; RFC 5280 §4.2: extensions that decode, each at most once" };
pub const CRL_NEXT_UPDATE: Rule = Rule { name: "crl-next-update", source: "RFC 5280 §5.1.2.5, §4.1.2.5: nextUpdate a representable time, within the issuer's validity" };
pub const EKU_KEY: Rule = Rule { name: "key-usage-for-key", source: "RFC 5480 §3: keyEncipherment is not for EC keys" };

pub const WITHIN_CONSTRAINTS: Rule = Rule { name: "name-constraints", source: "RFC 5280 §4.2.1.10, §6.1.3 (b), (c): every name within each issuer's permitted subtrees and outside its excluded ones, as OpenSSL's verification checks them" };

/// Every rule, in the order they are applied.
pub const RULES: [&Rule; 19] = [
    &SUBJECT_KEY, &SUBJECT, &EMPTY_SUBJECT, &REQUEST_EXTENSIONS, &DNS_NAME, &WILDCARD, &EMAIL, &URI, &SPIFFE, &IP, &CA_VALID,
    &PROFILE_BUILDS, &CA_KEY_USAGE, &NAME_CONSTRAINTS, &CRITICAL, &EKU_KEY, &CRL_NEXT_UPDATE, &WITHIN_CONSTRAINTS,
    &Rule { name: "issuer-chain", source: "RFC 5280 §6.1: each certificate issued by the next, up to a self-signed root" },
];

/// The rules as `issue --help` lists them.
pub fn rules_help() -> String {
    let mut out = String::from("Rules checked before the token signs (a refusal names its rule, exit 2):\n");
    for r in RULES {
        out.push_str(&format!("  {}\n      {}\n", r.name, r.source));
    }
    out.push_str("With --target aws-pca (or a profile's target = aws-pca), AWS Private CA's import rules too:\n");
    for r in super::aws_pca::RULES {
        out.push_str(&format!("  {}\n      {}\n", r.name, r.source));
    }
    out
}

fn no(rule: &Rule, value: &str, why: impl std::fmt::Display) -> CaError {
    refuse(rule.name, format!("'{}' {why}", escape(value)))
}

/// A dNSName: LDH labels of 1 to 63 octets, at most 253 in all, no empty label, ASCII
/// only (an IDN must be given as its A-label), not an IP address; a wildcard only as the
/// whole leftmost label of a name with at least two labels after it, and only where
/// `wildcard_ok`.
pub fn dns_name(name: &str, wildcard_ok: bool) -> Result<(), CaError> {
    let r = &DNS_NAME;
    if name.is_empty() {
        return Err(no(r, name, "is empty"));
    }
    if let Some(c) = name.chars().find(|c| !c.is_ascii()) {
        return Err(no(r, name, format!("holds '{c}', not ASCII: give an internationalised name as its A-label (xn--...)")));
    }
    if name.len() > 253 {
        return Err(no(r, name, format!("is {} characters; a DNS name has at most 253", name.len())));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(no(r, name, "is an IP address: give it as IP:, not DNS:"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    let wildcard = labels[0] == "*";
    if labels.iter().enumerate().any(|(i, l)| l.contains('*') && (i != 0 || *l != "*")) {
        return Err(no(&WILDCARD, name, "has '*' other than as the whole leftmost label"));
    }
    if wildcard && labels.len() < 3 {
        return Err(no(&WILDCARD, name, "has fewer than two labels after its wildcard"));
    }
    if wildcard && !wildcard_ok {
        return Err(no(&WILDCARD, name, "is a wildcard, which this profile does not issue"));
    }
    for label in labels.iter().skip(usize::from(wildcard)) {
        if label.is_empty() {
            return Err(no(r, name, "has an empty label"));
        }
        if label.len() > 63 {
            return Err(no(r, name, format!("has a label of {} characters; at most 63", label.len())));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(no(r, name, format!("holds '{}': labels are letters, digits and hyphens", escape(&c.to_string()))));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(no(r, name, "has a label that starts or ends with a hyphen"));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Err(no(r, name, "ends in an all-numeric label (an address, not a name)"));
    }
    Ok(())
}

/// An rfc822Name: `local@domain`, a dot-atom local part of at most 64 characters and a
/// domain that is a DNS name; no control character anywhere.
pub fn email(mailbox: &str) -> Result<(), CaError> {
    let r = &EMAIL;
    let Some((local, domain)) = mailbox.rsplit_once('@') else {
        return Err(no(r, mailbox, "has no '@'"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(no(r, mailbox, "has a local part that is empty or longer than 64 characters"));
    }
    const ATEXT: &str = "!#$%&'*+/=?^_`{|}~-";
    let atom_ok = |c: char| c.is_ascii_alphanumeric() || ATEXT.contains(c);
    if local.split('.').any(|atom| atom.is_empty() || !atom.chars().all(atom_ok)) {
        return Err(no(r, mailbox, "has a local part that is not a dot-atom (letters, digits, !#$%&'*+/=?^_`{|}~- and single dots)"));
    }
    dns_name(domain, false).map_err(|_| no(r, mailbox, "has a domain that is not a valid DNS name"))
}

/// A URI: an absolute URI (RFC 3986 scheme, a scheme-specific part), printable ASCII
/// without spaces; a `spiffe:` URI must be a SPIFFE ID.
pub fn uri(text: &str) -> Result<(), CaError> {
    let r = &URI;
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(no(r, text, format!("holds '{}': a URI is printable ASCII without spaces (percent-encode the rest)", escape(&c.to_string()))));
    }
    let Some((scheme, rest)) = text.split_once(':') else {
        return Err(no(r, text, "has no scheme (a URI in a certificate is absolute)"));
    };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() {
        return Err(no(r, text, "is not scheme:scheme-specific-part"));
    }
    if scheme.eq_ignore_ascii_case("spiffe") {
        return spiffe_id(text);
    }
    Ok(())
}

/// A SPIFFE ID: `spiffe://trust-domain[/segment...]`, the trust domain of lowercase
/// letters, digits, '.', '-' and '_', segments of letters, digits, '.', '-' and '_',
/// none empty, '.' or '..'; no query, fragment, port or user info; at most 2048 bytes.
pub fn spiffe_id(text: &str) -> Result<(), CaError> {
    let r = &SPIFFE;
    let Some(rest) = text.strip_prefix("spiffe://") else {
        return Err(no(r, text, "does not start with spiffe:// (the scheme in lower case)"));
    };
    if text.len() > 2048 {
        return Err(no(r, text, "is longer than 2048 bytes"));
    }
    let (domain, path) = rest.split_once('/').map_or((rest, None), |(d, p)| (d, Some(p)));
    if domain.is_empty() || !domain.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c)) {
        return Err(no(r, text, "has a trust domain that is empty or not lowercase letters, digits, '.', '-', '_'"));
    }
    if let Some(path) = path {
        for seg in path.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(no(r, text, "has an empty, '.' or '..' path segment (or a trailing '/')"));
            }
            if !seg.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)) {
                return Err(no(r, text, "has a path segment with characters other than letters, digits, '.', '-', '_'"));
            }
        }
    }
    Ok(())
}

/// Every subjectAltName entry by its kind's rule.
pub fn alt_names(names: &[AltName], wildcard_ok: bool) -> Result<(), CaError> {
    for n in names {
        match n {
            AltName::Dns(v) => dns_name(v, wildcard_ok)?,
            AltName::Email(v) => email(v)?,
            AltName::Uri(v) => uri(v)?,
            AltName::Ip(_) => {}
        }
    }
    Ok(())
}

/// The upper bound (characters) of a subject attribute (RFC 5280 Appendix A), or None
/// for attributes hsm-demo does not bound beyond ub-name.
fn upper_bound(field: &str) -> usize {
    match field {
        "CN" | "O" | "OU" | "serialNumber" | "title" => 64,
        "L" | "ST" | "pseudonym" => 128,
        "emailAddress" => 255,
        "DC" => 63,
        _ => 32768,
    }
}

/// One subject attribute: no control character, within its upper bound, a country of
/// two capital letters.
pub fn subject_attribute(field: &str, value: &str) -> Result<(), CaError> {
    let r = &SUBJECT;
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(refuse(r.name, format!("{field}='{}' holds the control character {}", escape(value), escape(&c.to_string()))));
    }
    if field == "C" {
        if value.len() != 2 || !value.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(refuse(r.name, format!("C='{}' is not a two-letter ISO 3166 country code (e.g. US)", escape(value))));
        }
        return Ok(());
    }
    let (len, max) = (value.chars().count(), upper_bound(field));
    if len > max {
        return Err(refuse(r.name, format!("{field} is {len} characters; RFC 5280 allows at most {max}")));
    }
    Ok(())
}

/// Every attribute of a name.
pub fn subject(name: &bridge::X509NameRef) -> Result<(), CaError> {
    for e in name.entries() {
        let field = e.object().nid().short_name().unwrap_or("?");
        // The bytes as encoded (PrintableString, IA5String and UTF8String are UTF-8
        // compatible; RFC 5280 §4.1.2.6 asks for UTF8String or PrintableString), whole:
        // an embedded NUL is seen, not cut at.
        let value = std::str::from_utf8(e.data().as_slice())
            .map_err(|_| refuse(SUBJECT.name, format!("the {field} value is not UTF-8 or PrintableString text")))?;
        subject_attribute(field, value)?;
    }
    Ok(())
}

/// A subject key hsm-demo issues for: RSA of 2048 to 16384 bits with an odd public
/// exponent of at least 65537; EC on P-256, P-384 or P-521 (named) with a point that
/// is on its curve; Ed25519. Returns what it is, for the checks list.
pub fn subject_key(key: &PKey<Public>) -> Result<&'static str, CaError> {
    let r = &SUBJECT_KEY;
    match bridge::subject_key_facts(key) {
        bridge::KeyFacts::Rsa { bits, exponent_odd_and_large } => {
            if !(2048..=16384).contains(&bits) {
                return Err(refuse(r.name, format!("RSA-{bits}: keys of 2048 to 16384 bits only")));
            }
            if !exponent_odd_and_large {
                return Err(refuse(r.name, "the RSA public exponent is not an odd number of at least 65537"));
            }
            Ok("RSA")
        }
        bridge::KeyFacts::Ec { curve: Some(curve), point_valid } => {
            let kind = match curve.as_str() {
                "prime256v1" => "EC P-256",
                "secp384r1" => "EC P-384",
                "secp521r1" => "EC P-521",
                other => return Err(refuse(r.name, format!("EC curve {other} is not P-256, P-384 or P-521"))),
            };
            if !point_valid {
                return Err(refuse(r.name, "the EC public key is not a valid point of its curve"));
            }
            Ok(kind)
        }
        bridge::KeyFacts::Ec { curve: None, .. } => {
            Err(refuse(r.name, "an EC key with explicit curve parameters (only named curves P-256, P-384, P-521)"))
        }
        bridge::KeyFacts::Ed25519 => Ok("Ed25519"),
        bridge::KeyFacts::Other(name) => Err(refuse(r.name, format!("key type {name} is not EC, RSA or Ed25519"))),
    }
}

/// Extensions this CA issues that relying parties recognise when critical (RFC 5280
/// §4.2.1), as DER OID contents.
const KNOWN_CRITICAL: [(&[u8], &str); 9] = [
    (&[0x55, 0x1d, 0x13], "basicConstraints"),
    (&[0x55, 0x1d, 0x0f], "keyUsage"),
    (&[0x55, 0x1d, 0x25], "extendedKeyUsage"),
    (&[0x55, 0x1d, 0x11], "subjectAltName"),
    (&[0x55, 0x1d, 0x1e], "nameConstraints"),
    (&[0x55, 0x1d, 0x20], "certificatePolicies"),
    (&[0x55, 0x1d, 0x24], "policyConstraints"),
    (&[0x55, 0x1d, 0x36], "inhibitAnyPolicy"),
    (&[0x55, 0x1d, 0x21], "policyMappings"),
];
const NAME_CONSTRAINTS_OID: &[u8] = &[0x55, 0x1d, 0x1e];

/// What the profile built, on the lint copy: no critical extension relying parties do
/// not recognise, no extension twice, keyCertSign/cRLSign and nameConstraints only on
/// a CA certificate, no keyEncipherment for an EC or Ed25519 key.
pub fn built_extensions(lint: &bridge::X509, is_ca: bool, rsa_subject: bool) -> Result<(), CaError> {
    let der = lint.to_der().map_err(|_| refuse(PROFILE_BUILDS.name, "the certificate does not encode"))?;
    let exts = der::extensions(&der).ok_or_else(|| refuse(PROFILE_BUILDS.name, "the certificate's extensions do not parse"))?;
    for (i, (oid, critical)) in exts.iter().enumerate() {
        let name = KNOWN_CRITICAL.iter().find(|(o, _)| o == oid).map(|(_, n)| *n);
        if *critical && name.is_none() {
            return Err(refuse(CRITICAL.name, format!("the profile makes extension {} critical, which relying parties do not recognise", der::oid_text(oid))));
        }
        if exts[..i].iter().any(|(o, _)| o == oid) {
            return Err(refuse(CRITICAL.name, format!("the profile adds extension {} twice", name.map_or_else(|| der::oid_text(oid), str::to_string))));
        }
        if !is_ca && *oid == NAME_CONSTRAINTS_OID {
            return Err(refuse(NAME_CONSTRAINTS.name, "the profile adds nameConstraints to a certificate that is not a CA"));
        }
    }
    let usage = bridge::key_usage_bits(lint);
    if !is_ca && (usage.key_cert_sign || usage.crl_sign) {
        return Err(refuse(CA_KEY_USAGE.name, "the profile gives keyCertSign or cRLSign to a certificate that is not a CA (cA TRUE)"));
    }
    if !rsa_subject && usage.key_encipherment {
        return Err(refuse(EKU_KEY.name, "keyEncipherment for an EC or Ed25519 subject key"));
    }
    Ok(())
}

/// The issuer's certificate is valid now.
pub fn ca_valid_now(ca: &bridge::X509, now: i64) -> Result<(), CaError> {
    let (not_before, not_after) = bridge::validity(ca).map_err(|_| refuse(CA_VALID.name, "the CA certificate's validity cannot be read"))?;
    if now < not_before {
        return Err(refuse(CA_VALID.name, format!("the CA certificate is not yet valid (notBefore {})", ca.not_before())));
    }
    if now > not_after {
        return Err(refuse(CA_VALID.name, format!("the CA certificate has expired (notAfter {})", ca.not_after())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_rule_with_its_source() {
        let readme = include_str!("../../README.md");
        for r in RULES.iter().chain(super::super::aws_pca::RULES.iter()) {
            assert!(readme.contains(&format!("| `{}` | {} |", r.name, r.source)), "README lacks rule {}", r.name);
        }
    }

    #[test]
    fn dns_names_as_rfc_1034_and_5280_want_them() {
        for ok in ["www.example.com", "a.b", "xn--bcher-kva.example", "a-b.example.co", &"a".repeat(63)] {
            dns_name(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        dns_name("*.example.com", true).unwrap();
        for bad in [
            "", "www.example.com\0.evil.com", "a\r\nb.example.com", "a b.example.com", "bücher.example", "*", "*.*.x",
            "www.*.x", "192.168.1.1", "a..b", ".a.b", "a.b.", "_", "a\tb.example", "-a.example", "a.123", &"a".repeat(64),
            &format!("{}.com", "a.".repeat(130)),
        ] {
            assert!(dns_name(bad, true).is_err(), "{bad:?} passed");
        }
        assert!(dns_name("*.example.com", false).unwrap_err().to_string().contains("dns-wildcard"));
    }

    #[test]
    fn emails_uris_and_spiffe_ids() {
        email("alice@example.com").unwrap();
        for bad in ["alice@example.com\r\nBcc: eve@evil.com", "al\0ice@example.com", "alice", "", "@example.com", "a..b@example.com"] {
            assert!(email(bad).is_err(), "{bad:?} passed");
        }
        uri("https://example.com/x").unwrap();
        uri("spiffe://prod.example.org/ns/web").unwrap();
        for bad in ["example.com", "https://exa mple.com", "spiffe://Prod.example.org/x", "spiffe://prod.example.org/", "spiffe://prod.example.org/a/../b", "spiffe://", "1http://x"] {
            assert!(uri(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn subject_attributes_have_bounds_and_no_control_characters() {
        subject_attribute("CN", &"x".repeat(64)).unwrap();
        assert!(subject_attribute("CN", &"x".repeat(65)).unwrap_err().to_string().contains("at most 64"));
        assert!(subject_attribute("C", "USA").is_err());
        assert!(subject_attribute("C", "us").is_err());
        subject_attribute("C", "US").unwrap();
        let e = subject_attribute("CN", "a\x1b[31mb").unwrap_err().to_string();
        assert!(e.contains("\\x1b") && !e.contains('\x1b'), "{e}");
    }
}
