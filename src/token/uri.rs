//! PKCS#11 URIs (RFC 7512): parsing what users pass, formatting what we print.

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};

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
    #[error("PKCS#11 URI: bad percent-escape '{escape}' in '{attr}' (RFC 7512 wants '%' and two hex digits)")]
    Percent { attr: String, escape: String },
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
    /// Whether the URI says anything about the token (rather than only the object).
    pub fn names_token(&self) -> bool {
        self.token.is_some()
            || self.serial.is_some()
            || self.model.is_some()
            || self.manufacturer.is_some()
    }

    /// Parses `pkcs11:path-attr;path-attr?query-attr&query-attr`.
    ///
    /// Unknown path attributes are accepted and ignored, as RFC 7512 §2.3 asks of
    /// consumers; a PIN in the query is refused outright.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| UriError::Scheme(uri.to_string()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        // A PIN never comes from a URI, wherever it is put and however it is spelt.
        for attr in query.split('&').chain(path.split(';')).filter(|a| !a.is_empty()) {
            let name = attr.split_once('=').map_or(attr, |(n, _)| n).trim();
            let lower = name.to_ascii_lowercase();
            if lower == "pin-value" || lower == "pin-source" {
                return Err(UriError::PinInUri(name.to_string()));
            }
        }
        let mut out = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, raw) = attr
                .split_once('=')
                .ok_or_else(|| UriError::NoValue(attr.to_string()))?;
            let value = percent_decode(attr, raw)?;
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
            out.push_str(&encode_value(value, name == "id"));
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

/// RFC 7512 §2.3: everything but the unreserved characters is `%XX`.
const PATH_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Encodes a path attribute value; `id` is always fully encoded (it is binary).
fn encode_value(value: &[u8], all: bool) -> String {
    if all {
        value.iter().map(|b| format!("%{b:02X}")).collect()
    } else {
        percent_encode(value, PATH_VALUE).to_string()
    }
}

/// Decodes a percent-encoded value, refusing a `%` that is not followed by two hex
/// digits (percent_decode would pass `%+1` or `%zz` through as text, and
/// `u8::from_str_radix` would read `%+1` as 0x01).
fn percent_decode(attr: &str, raw: &str) -> Result<Vec<u8>, UriError> {
    for (at, _) in raw.match_indices('%') {
        let escape = raw.get(at..at + 3).unwrap_or(&raw[at..]);
        let hex = escape.as_bytes().get(1..3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(UriError::Percent {
                attr: attr.to_string(),
                escape: escape.to_string(),
            });
        }
    }
    Ok(percent_decode_str(raw).collect())
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
            Pkcs11Uri::parse("pkcs11:token=ui;object=k;pin-value=secret123"),
            Err(UriError::PinInUri(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("pkcs11:token=a?PIN-VALUE=1234"),
            Err(UriError::PinInUri(_))
        ));
        assert!(matches!(
            Pkcs11Uri::parse("token=a"),
            Err(UriError::Scheme(_))
        ));
        for bad in ["pkcs11:id=%zz", "pkcs11:token=%+1", "pkcs11:token=a%2", "pkcs11:token=%"] {
            assert!(
                matches!(Pkcs11Uri::parse(bad), Err(UriError::Percent { .. })),
                "{bad}"
            );
        }
        let err = Pkcs11Uri::parse("pkcs11:token=%+1").unwrap_err().to_string();
        assert!(err.contains("'%+1'"), "{err}");
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
