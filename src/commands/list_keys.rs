//! `list-keys`: the token's key objects with custody attributes and URIs.

use crate::cli::GlobalArgs;
use crate::token::KeyInfo;

use super::{login_user, print_json};

pub fn run(g: &GlobalArgs, json: bool) -> anyhow::Result<()> {
    let (_module, session) = login_user(g, None)?;
    let keys = session.list_keys()?;
    if json {
        #[derive(serde::Serialize)]
        struct Listing<'a> {
            token: &'a crate::token::TokenRef,
            keys: &'a [KeyInfo],
        }
        return print_json(&Listing {
            token: session.token(),
            keys: &keys,
        });
    }
    let t = session.token();
    println!(
        "Token '{}' (serial {}): {} key object(s)",
        t.label,
        t.serial,
        keys.len()
    );
    for k in &keys {
        println!();
        println!("{} key '{}'", capitalise(k.class), k.label);
        row("id", &k.id);
        row(
            "type",
            &format!(
                "{}{}",
                k.key_type,
                k.curve.map(|c| format!(" {c}")).unwrap_or_default()
            ),
        );
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
                ]
                .join(" "),
            );
        }
        if let Some(sign) = k.can_sign {
            row("can sign", if sign { "yes" } else { "no" });
        }
        row("uri", &k.uri);
    }
    Ok(())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn row(name: &str, value: &str) {
    println!("  {:<9} {value}", format!("{name}:"));
}
