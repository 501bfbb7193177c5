//! `list-keys`: the token's key objects with custody attributes and URIs.

use crate::console::outln;
use serde::Serialize;

use crate::settings::Settings;
use crate::token::{Custody, KeyObject, TokenRef};

use super::print_json;

pub type Args = super::FormatArgs;

/// `list-keys --json`.
#[derive(Serialize)]
struct Listing {
    token: TokenJson,
    keys: Vec<KeyJson>,
}

#[derive(Serialize)]
pub struct TokenJson {
    label: String,
    serial: String,
    manufacturer: String,
    model: String,
}

impl From<&TokenRef> for TokenJson {
    fn from(t: &TokenRef) -> Self {
        TokenJson {
            label: t.label.clone(),
            serial: t.serial.clone(),
            manufacturer: t.manufacturer.clone(),
            model: t.model.clone(),
        }
    }
}

#[derive(Serialize)]
struct KeyJson {
    label: String,
    /// CKA_ID, hex.
    id: String,
    /// "private" or "public".
    class: &'static str,
    key_type: String,
    curve: Option<&'static str>,
    /// RSA modulus bits.
    bits: Option<u64>,
    can_sign: Option<bool>,
    custody: Option<Custody>,
    /// The usage attributes the token set (sign, verify, decrypt, ...).
    usage: Vec<&'static str>,
    uri: String,
    /// The certificate objects beside a private key (same CKA_ID).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<CertJson>,
}

#[derive(Serialize)]
struct CertJson {
    subject: String,
    issuer: String,
    not_after: String,
    uri: String,
}

impl CertJson {
    fn of(c: &crate::token::cert::CertObject) -> CertJson {
        let (subject, issuer, not_after) = match crate::bridge::X509::from_der(&c.der) {
            Ok(x) => (crate::ca::subject_line(x.subject_name()), crate::ca::subject_line(x.issuer_name()), x.not_after().to_string()),
            Err(_) => ("(not an X.509 certificate)".into(), String::new(), String::new()),
        };
        crate::bridge::clear_openssl_errors();
        CertJson { subject, issuer, not_after, uri: c.uri.clone() }
    }
}

impl From<&KeyObject> for KeyJson {
    fn from(k: &KeyObject) -> Self {
        KeyJson {
            label: k.label.clone(),
            id: hex::encode(&k.id),
            class: k.class.uri_type(),
            key_type: k.kind.type_name().to_string(),
            curve: k.kind.curve().map(|c| c.name()),
            bits: match k.kind {
                crate::token::KeyKind::Rsa(bits) => bits,
                _ => None,
            },
            can_sign: k.can_sign,
            custody: k.custody,
            usage: k.usage.clone(),
            uri: k.uri.clone(),
            certificates: Vec::new(),
        }
    }
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let hsm = super::login(settings, None, super::Use::Login)?;
    let keys = hsm.session().list_keys()?;
    let certs = hsm.session().list_certificates()?;
    let json_of = |k: &KeyObject| {
        let mut j = KeyJson::from(k);
        if j.class == "private" {
            j.certificates = certs.iter().filter(|c| c.id == k.id).map(CertJson::of).collect();
        }
        j
    };
    let t = hsm.token();
    if a.json {
        return print_json(&Listing {
            token: t.into(),
            keys: keys.iter().map(json_of).collect(),
        });
    }
    outln!(
        "Token '{}' (serial {}): {} key object(s)",
        t.label,
        t.serial,
        keys.len()
    )?;
    for k in &keys {
        let json = json_of(k);
        outln!()?;
        outln!("{} key '{}'", capitalise(json.class), k.label)?;
        row("id", &json.id)?;
        let size = k.kind.size_name().map(|s| format!(" {s}")).unwrap_or_default();
        row("type", &format!("{}{size}", json.key_type))?;
        if let Some(c) = &k.custody {
            let flag = |name: &str, v: bool| format!("{name}={}", if v { "yes" } else { "no" });
            row(
                "custody",
                &[
                    flag("sensitive", c.sensitive),
                    flag("extractable", c.extractable),
                    flag("always-sensitive", c.always_sensitive),
                    flag("never-extractable", c.never_extractable),
                    flag("local", c.local),
                    flag("wrap-with-trusted", c.wrap_with_trusted),
                ]
                .join(" "),
            )?;
            outln!("            ({})", c.describe())?;
        }
        if let Some(sign) = k.can_sign {
            row("can sign", if sign { "yes" } else { "no" })?;
        }
        row("usage", &k.usage.join(", "))?;
        row("uri", &k.uri)?;
        for c in &json.certificates {
            row("cert", &format!("{} (issuer {}), until {}", c.subject, c.issuer, c.not_after))?;
            row("cert uri", &c.uri)?;
        }
    }
    Ok(())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn row(name: &str, value: &str) -> Result<(), crate::console::StdoutError> {
    outln!("  {:<9} {value}", format!("{name}:"))?;
    Ok(())
}
