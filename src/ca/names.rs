//! Names as users write them: a distinguished name in the form `openssl req -subj`
//! takes, and subjectAltName entries in the `TYPE:value` form of `openssl req -addext`.

use openssl::x509::X509Name;

use crate::bridge::{self, AltName};

use super::CaError;

/// `/C=US/O=Example/CN=Name` (a `/` inside a value written `\/`).
pub fn parse_dn(text: &str) -> Result<X509Name, CaError> {
    let bad = |why: String| CaError::Input(why);
    let body = text
        .strip_prefix('/')
        .ok_or_else(|| bad(format!("subject '{text}' is not in the form /C=US/O=Example/CN=Name")))?;
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.push(chars.next().ok_or_else(|| bad(format!("subject '{text}' ends with a lone backslash")))?),
            '/' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let mut entries = Vec::with_capacity(parts.len());
    for part in &parts {
        let (field, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("subject part '{part}' is not FIELD=value")))?;
        if value.is_empty() {
            return Err(bad(format!("subject field {field} is empty")));
        }
        super::validate::subject_attribute(field, value)?;
        entries.push((field, value));
    }
    bridge::name_from_entries(entries).map_err(|e| match e {
        bridge::BridgeError::NameField { field, .. } => {
            bad(format!("subject field '{field}' is not one OpenSSL knows (C, ST, L, O, OU, CN, ...)"))
        }
        other => CaError::Input(other.to_string()),
    })
}

/// One `--san TYPE:value`, checked by its kind's rule (a wildcard may be asked for; the
/// issuing profile decides).
pub fn parse_alt_name(text: &str) -> Result<AltName, CaError> {
    let name = parse_alt_name_text(text)?;
    super::validate::alt_names(std::slice::from_ref(&name), true)?;
    Ok(name)
}

fn parse_alt_name_text(text: &str) -> Result<AltName, CaError> {
    let bad = |why: String| CaError::Input(why);
    let (kind, value) = text
        .split_once(':')
        .ok_or_else(|| bad(format!("--san '{text}' is not TYPE:value (DNS:, IP:, email:, URI:)")))?;
    if value.is_empty() {
        return Err(bad(format!("--san '{text}' has an empty value")));
    }
    match kind.to_ascii_lowercase().as_str() {
        "dns" => Ok(AltName::Dns(value.to_string())),
        "ip" => value.parse().map(AltName::Ip).map_err(|_| bad(format!("--san '{text}': not an IP address"))),
        "email" => Ok(AltName::Email(value.to_string())),
        "uri" => Ok(AltName::Uri(value.to_string())),
        other => Err(bad(format!("--san type '{other}' is not one of DNS, IP, email, URI"))),
    }
}
