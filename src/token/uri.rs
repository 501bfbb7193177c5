//! PKCS#11 URIs (RFC 7512): parsing what users pass, formatting what we print.

use std::fmt::Write as _;

/// The parts of a `pkcs11:` URI that select a token and an object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    pub token: Option<String>,
    pub serial: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub object_type: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    #[error("not a PKCS#11 URI (must start with 'pkcs11:'): {0}")]
    Scheme(String),
    #[error("PKCS#11 URI attribute '{0}' has no '=' value")]
    NoValue(String),
    #[error("PKCS#11 URI: bad percent-encoding in '{0}'")]
    Percent(String),
    #[error("PKCS#11 URI attribute '{0}' appears twice")]
    Repeated(String),
    #[error("PKCS#11 URI carries a PIN ({0}); PINs never go on the command line: use HSM_DEMO_PIN, --pin-file or the prompt")]
    PinInUri(String),
    #[error(
        "PKCS#11 URI attribute 'type' must be private, public, cert, secret-key or data, not '{0}'"
    )]
    BadType(String),
}

impl Pkcs11Uri {
    /// Parses `pkcs11:path-attr;path-attr?query-attr&query-attr`.
    ///
    /// Unknown path attributes are accepted and ignored, as RFC 7512 §2.3 asks of
    /// consumers; a PIN in the query is refused outright.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| UriError::Scheme(uri.to_string()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let name = attr.split_once('=').map_or(attr, |(n, _)| n);
            if name == "pin-value" || name == "pin-source" {
                return Err(UriError::PinInUri(name.to_string()));
            }
        }
        let mut out = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, raw) = attr
                .split_once('=')
                .ok_or_else(|| UriError::NoValue(attr.to_string()))?;
            let value = percent_decode(raw).ok_or_else(|| UriError::Percent(attr.to_string()))?;
            let text = || String::from_utf8_lossy(&value).into_owned();
            let slot = match name {
                "token" => Some(&mut out.token),
                "serial" => Some(&mut out.serial),
                "manufacturer" => Some(&mut out.manufacturer),
                "model" => Some(&mut out.model),
                "object" => Some(&mut out.object),
                "type" => {
                    let t = text();
                    if !matches!(
                        t.as_str(),
                        "private" | "public" | "cert" | "secret-key" | "data"
                    ) {
                        return Err(UriError::BadType(t));
                    }
                    Some(&mut out.object_type)
                }
                "id" => {
                    if out.id.replace(value.clone()).is_some() {
                        return Err(UriError::Repeated(name.to_string()));
                    }
                    None
                }
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.replace(text()).is_some() {
                    return Err(UriError::Repeated(name.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// Formats the URI with attributes in a stable order.
    pub fn to_uri_string(&self) -> String {
        let mut out = String::from("pkcs11:");
        let mut first = true;
        let mut push = |name: &str, value: &[u8]| {
            if !first {
                out.push(';');
            }
            first = false;
            out.push_str(name);
            out.push('=');
            out.push_str(&percent_encode(value, name == "id"));
        };
        if let Some(v) = &self.model {
            push("model", v.as_bytes());
        }
        if let Some(v) = &self.manufacturer {
            push("manufacturer", v.as_bytes());
        }
        if let Some(v) = &self.serial {
            push("serial", v.as_bytes());
        }
        if let Some(v) = &self.token {
            push("token", v.as_bytes());
        }
        if let Some(v) = &self.id {
            push("id", v);
        }
        if let Some(v) = &self.object {
            push("object", v.as_bytes());
        }
        if let Some(v) = &self.object_type {
            push("type", v.as_bytes());
        }
        out
    }
}

/// RFC 7512 §2.3: unreserved characters stay, everything else is `%XX`. `id` is
/// always fully encoded (it is binary).
fn percent_encode(value: &[u8], all: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value {
        let keep = !all && (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_attributes_and_ids() {
        let uri =
            Pkcs11Uri::parse("pkcs11:token=my%20hsm;object=root-ca-key;id=%01%ab;type=private")
                .unwrap();
        assert_eq!(uri.token.as_deref(), Some("my hsm"));
        assert_eq!(uri.object.as_deref(), Some("root-ca-key"));
        assert_eq!(uri.id, Some(vec![0x01, 0xab]));
        assert_eq!(uri.object_type.as_deref(), Some("private"));
    }

    #[test]
    fn round_trips() {
        let uri = Pkcs11Uri {
            token: Some("a;b c".into()),
            serial: Some("0123".into()),
            object: Some("k".into()),
            id: Some(vec![0, 255]),
            object_type: Some("private".into()),
            ..Default::default()
        };
        let text = uri.to_uri_string();
        assert_eq!(
            text,
            "pkcs11:serial=0123;token=a%3Bb%20c;id=%00%FF;object=k;type=private"
        );
        assert_eq!(Pkcs11Uri::parse(&text).unwrap(), uri);
    }

    #[test]
    fn refuses_pins_and_bad_input() {
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token=a?pin-value=1234"),
            Err(UriError::PinInUri(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token=a?pin-source=file:x"),
            Err(UriError::PinInUri(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("token=a"),
            Err(UriError::Scheme(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:id=%zz"),
            Err(UriError::Percent(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token"),
            Err(UriError::NoValue(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token=a;token=b"),
            Err(UriError::Repeated(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:type=secret"),
            Err(UriError::BadType(_))
        ));
    }
}
