//! `list-slots`: every slot of the module, its token, flags and EC capabilities.

use crate::console::outln;
use cryptoki::mechanism::MechanismType;
use serde::Serialize;

use crate::settings::Settings;
use crate::token::{Module, SlotEntry, TokenClock, TokenState};

use super::{open_module, print_json};

pub type Args = super::FormatArgs;

/// `list-slots --json`.
#[derive(Serialize)]
struct Listing {
    module: ModuleReport,
    slots: Vec<SlotReport>,
}

/// Library-level facts for the header.
#[derive(Serialize)]
struct ModuleReport {
    path: String,
    manufacturer: String,
    description: String,
    library_version: String,
    cryptoki_version: String,
}

/// One slot.
#[derive(Serialize)]
struct SlotReport {
    slot_id: u64,
    description: String,
    manufacturer: String,
    token_present: bool,
    token: Option<TokenReport>,
    /// What could not be read about this slot.
    error: Option<String>,
}

/// The token in a slot.
#[derive(Serialize)]
struct TokenReport {
    initialized: bool,
    label: String,
    manufacturer: String,
    model: String,
    serial: String,
    login_required: bool,
    user_pin_initialized: bool,
    user_pin_count_low: bool,
    user_pin_final_try: bool,
    user_pin_locked: bool,
    so_pin_locked: bool,
    /// ulMinPinLen.
    min_pin_len: usize,
    /// ulMaxPinLen; null for no limit (0, CK_EFFECTIVELY_INFINITE).
    max_pin_len: Option<usize>,
    /// The token's clock (CKF_CLOCK_ON_TOKEN) as RFC 3339; null without a clock.
    utc_time: Option<String>,
    /// What `utcTime` held when it was not the spec's YYYYMMDDhhmmss00.
    utc_time_malformed: Option<String>,
    can_generate_ec: bool,
    can_sign_ecdsa: bool,
    ecdsa_mechanisms: Vec<String>,
    /// The algorithms hsm-demo can generate and sign with on this token.
    algorithms: Vec<&'static str>,
    uri: String,
}

impl TokenReport {
    fn new(s: &TokenState, algorithms: Vec<&'static str>) -> Self {
        let (t, info, mechanisms) = (&s.token, &s.info, &s.mechanisms);
        TokenReport {
            initialized: info.token_initialized(),
            label: t.label.clone(),
            manufacturer: t.manufacturer.clone(),
            model: t.model.clone(),
            serial: t.serial.clone(),
            login_required: info.login_required(),
            user_pin_initialized: info.user_pin_initialized(),
            user_pin_count_low: info.user_pin_count_low(),
            user_pin_final_try: info.user_pin_final_try(),
            user_pin_locked: info.user_pin_locked(),
            so_pin_locked: info.so_pin_locked(),
            min_pin_len: info.min_pin,
            max_pin_len: info.max_pin,
            utc_time: match &info.clock {
                Some(TokenClock::Utc(t)) => Some(t.clone()),
                _ => None,
            },
            utc_time_malformed: match &info.clock {
                Some(TokenClock::Malformed(raw)) => Some(raw.clone()),
                _ => None,
            },
            can_generate_ec: mechanisms.contains(&MechanismType::ECC_KEY_PAIR_GEN),
            can_sign_ecdsa: mechanisms.contains(&MechanismType::ECDSA)
                || mechanisms.contains(&MechanismType::ECDSA_SHA256),
            ecdsa_mechanisms: mechanisms
                .iter()
                .map(|m| m.to_string())
                .filter(|m| m.starts_with("CKM_ECDSA"))
                .collect(),
            algorithms,
            uri: t.uri().to_uri_string(),
        }
    }
}

impl SlotReport {
    fn new(module: &Module, s: &SlotEntry) -> Self {
        let token = s.token.as_ref().map(|t| {
            let algorithms = if t.info.token_initialized() {
                module
                    .algorithms(&t.token)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| a.name())
                    .collect()
            } else {
                Vec::new()
            };
            TokenReport::new(t, algorithms)
        });
        SlotReport {
            slot_id: s.slot.id(),
            description: s.description.clone(),
            manufacturer: s.manufacturer.clone(),
            token_present: s.token.is_some() || s.problem.is_some(),
            token,
            error: s.problem.clone(),
        }
    }
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let (module, _lock) = open_module(settings, super::Use::Read)?;
    let info = module.library_info()?;
    let listing = Listing {
        module: ModuleReport {
            path: module.path().display().to_string(),
            manufacturer: info.manufacturer,
            description: info.description,
            library_version: info.library_version,
            cryptoki_version: info.cryptoki_version,
        },
        slots: module.slots()?.iter().map(|s| SlotReport::new(&module, s)).collect(),
    };
    if a.json {
        return print_json(&listing);
    }
    let m = &listing.module;
    outln!(
        "Module:  {} ({}, {} {}, Cryptoki {})",
        m.path, m.manufacturer, m.description, m.library_version, m.cryptoki_version
    )?;
    if let Some(conf) = module.softhsm_conf() {
        outln!("Config:  SOFTHSM2_CONF={}", conf.display())?;
    }
    outln!("Slots:   {}", listing.slots.len())?;
    for slot in &listing.slots {
        outln!()?;
        print_slot(slot)?;
    }
    Ok(())
}

fn print_slot(s: &SlotReport) -> Result<(), crate::console::StdoutError> {
    let state = match &s.token {
        None => "no token",
        Some(t) if t.initialized => "token present, initialized",
        Some(_) => "token present, not initialized",
    };
    outln!("Slot {} (0x{:x}): {}", s.slot_id, s.slot_id, state)?;
    row("description", &s.description)?;
    if let Some(e) = &s.error {
        row("error", e)?;
    }
    let Some(t) = &s.token else { return Ok(()) };
    if !t.initialized {
        return Ok(());
    }
    row("label", &t.label)?;
    row("manufacturer", &t.manufacturer)?;
    row("model", &t.model)?;
    row("serial", &t.serial)?;
    row("flags", &flags(t))?;
    row(
        "PIN length",
        &match t.max_pin_len {
            Some(max) => format!("{} to {max}", t.min_pin_len),
            None => format!("at least {}, no upper limit", t.min_pin_len),
        },
    )?;
    if let Some(utc) = &t.utc_time {
        row("clock", utc)?;
    } else if let Some(raw) = &t.utc_time_malformed {
        row("clock", &format!("unknown (the token reported {raw:?}, not YYYYMMDDhhmmss00)"))?;
    }
    row(
        "EC keygen",
        if t.can_generate_ec {
            "yes (CKM_EC_KEY_PAIR_GEN)"
        } else {
            "no (CKM_EC_KEY_PAIR_GEN missing)"
        },
    )?;
    let sign = if t.ecdsa_mechanisms.is_empty() {
        "none".to_string()
    } else {
        t.ecdsa_mechanisms.join(", ")
    };
    row(
        "ECDSA sign",
        &format!("{} ({sign})", if t.can_sign_ecdsa { "yes" } else { "no" }),
    )?;
    row("algorithms", &t.algorithms.join(", "))?;
    row("uri", &t.uri)?;
    Ok(())
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

fn row(name: &str, value: &str) -> Result<(), crate::console::StdoutError> {
    outln!("  {:<13} {value}", format!("{name}:"))?;
    Ok(())
}
