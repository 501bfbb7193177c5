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
        }
    }
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let hsm = super::login(settings, None, super::Use::Login)?;
    let keys = hsm.session().list_keys()?;
    let t = hsm.token();
    if a.json {
        return print_json(&Listing {
            token: t.into(),
            keys: keys.iter().map(KeyJson::from).collect(),
        });
    }
    outln!(
        "Token '{}' (serial {}): {} key object(s)",
        t.label,
        t.serial,
        keys.len()
    )?;
    for k in &keys {
        let json = KeyJson::from(k);
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
