//! `init-token`: C_InitToken on a free slot and the first user PIN, without softhsm2-util.

use std::path::Path;

use crate::cli::GlobalArgs;
use crate::error::usage;
use crate::pin::{self, PinRole};

use super::open_module;

pub fn run(g: &GlobalArgs, label: &str, so_pin_file: Option<&Path>) -> anyhow::Result<()> {
    if label.is_empty() || label.len() > 32 {
        return Err(usage(format!(
            "token label must be 1 to 32 bytes (PKCS#11 CK_TOKEN_INFO.label), got {}",
            label.len()
        )));
    }
    let module = open_module(g)?;
    let what = format!("token '{label}'");
    let so_pin = pin::read_new_pin(PinRole::SecurityOfficer, so_pin_file, &what)?;
    let user_pin = pin::read_new_pin(PinRole::User, g.pin_file.as_deref(), &what)?;
    let token = module.init_token(label, &so_pin, &user_pin)?;
    println!(
        "Initialized token '{}' (serial {}) in slot {}",
        token.label,
        token.serial,
        token.slot.id()
    );
    println!("  uri: {}", token.uri().to_uri_string());
    Ok(())
}
