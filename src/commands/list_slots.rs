//! `list-slots`: every slot of the module, its token, flags and EC capabilities.

use crate::cli::GlobalArgs;
use crate::token::{ModuleReport, SlotReport, TokenReport};

use super::{open_module, print_json};

#[derive(serde::Serialize)]
struct Listing {
    module: ModuleReport,
    slots: Vec<SlotReport>,
}

pub fn run(g: &GlobalArgs, json: bool) -> anyhow::Result<()> {
    let module = open_module(g)?;
    let listing = Listing {
        module: module.report()?,
        slots: module.slots()?,
    };
    if json {
        return print_json(&listing);
    }
    let m = &listing.module;
    println!(
        "Module:  {} ({}, {} {}, Cryptoki {})",
        m.path, m.manufacturer, m.description, m.library_version, m.cryptoki_version
    );
    if let Ok(conf) = std::env::var("SOFTHSM2_CONF") {
        println!("Config:  SOFTHSM2_CONF={conf}");
    }
    println!("Slots:   {}", listing.slots.len());
    for slot in &listing.slots {
        println!();
        print_slot(slot);
    }
    Ok(())
}

fn print_slot(s: &SlotReport) {
    let state = match &s.token {
        None => "no token",
        Some(t) if t.initialized => "token present, initialized",
        Some(_) => "token present, not initialized",
    };
    println!("Slot {} (0x{:x}): {}", s.slot_id, s.slot_id, state);
    row("description", &s.description);
    let Some(t) = &s.token else { return };
    if !t.initialized {
        return;
    }
    row("label", &t.label);
    row("manufacturer", &t.manufacturer);
    row("model", &t.model);
    row("serial", &t.serial);
    row("flags", &flags(t));
    row(
        "EC keygen",
        if t.can_generate_ec {
            "yes (CKM_EC_KEY_PAIR_GEN)"
        } else {
            "no (CKM_EC_KEY_PAIR_GEN missing)"
        },
    );
    let sign = if t.ecdsa_mechanisms.is_empty() {
        "none".to_string()
    } else {
        t.ecdsa_mechanisms.join(", ")
    };
    row(
        "ECDSA sign",
        &format!("{} ({sign})", if t.can_sign_ecdsa { "yes" } else { "no" }),
    );
    row("uri", &t.uri);
}

fn flags(t: &TokenReport) -> String {
    let mut f = Vec::new();
    if t.login_required {
        f.push("login required");
    }
    f.push(if t.user_pin_initialized {
        "user PIN initialized"
    } else {
        "user PIN NOT initialized"
    });
    if t.user_pin_count_low {
        f.push("user PIN count low");
    }
    if t.user_pin_final_try {
        f.push("user PIN final try");
    }
    if t.user_pin_locked {
        f.push("user PIN LOCKED");
    }
    if t.so_pin_locked {
        f.push("SO PIN LOCKED");
    }
    f.join(", ")
}

fn row(name: &str, value: &str) {
    println!("  {:<13} {value}", format!("{name}:"));
}
