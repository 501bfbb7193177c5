//! `openssl-env`: shell exports that let the openssl CLI use the same token and the
//! same provider configuration as hsm-demo.

use crate::console::outln;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::bridge::PROVIDER_CONF;
use crate::error::SetupError;
use crate::output;
use crate::settings::Settings;

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let conf = provider_conf_path(settings)?;
    let mut exports = vec![
        ("OPENSSL_CONF", conf.display().to_string()),
        (
            "PKCS11_PROVIDER_MODULE",
            settings.module_path.display().to_string(),
        ),
    ];
    if let Some(softhsm) = settings.softhsm_conf() {
        exports.push(("SOFTHSM2_CONF", softhsm.display().to_string()));
    }
    for (name, value) in exports {
        let quoted = shlex::try_quote(&value)
            .with_context(|| format!("{name} cannot be quoted for a shell: {value:?}"))?;
        outln!("export {name}={quoted}")?;
    }
    outln!("# then e.g.: openssl storeutl -keys -passin env:HSM_DEMO_PIN 'pkcs11:'")?;
    Ok(())
}

/// openssl-conf/pkcs11.cnf in this source tree when it is there, else an identical
/// copy kept in hsm-demo's data directory.
fn provider_conf_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    let in_tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl-conf/pkcs11.cnf");
    if std::fs::read_to_string(&in_tree).is_ok_and(|text| text == PROVIDER_CONF) {
        return Ok(in_tree);
    }
    let dir = settings.data_dir.clone().ok_or_else(|| {
        SetupError("neither XDG_DATA_HOME nor HOME is set: nowhere to keep the provider config".into())
    })?;
    let copy = dir.join("openssl-pkcs11.cnf");
    if std::fs::read_to_string(&copy).is_ok_and(|text| text == PROVIDER_CONF) {
        return Ok(copy);
    }
    output::create_private_dir(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // An outdated copy from another hsm-demo version is replaced.
    let _ = std::fs::remove_file(&copy);
    output::publish_file(&copy, PROVIDER_CONF.as_bytes(), 0o644, "provider config")?;
    Ok(copy)
}
