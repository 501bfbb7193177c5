//! `openssl-env`: shell exports that let the openssl CLI use the same token and the
//! same provider configuration as hsm-demo.

use std::path::PathBuf;

use crate::bridge::PROVIDER_CONF;
use crate::cli::GlobalArgs;
use crate::token::{data_dir, ModuleChoice};

use super::io::write_new_file;

pub fn run(g: &GlobalArgs) -> anyhow::Result<()> {
    let module = ModuleChoice {
        path: g.module.clone(),
    }
    .resolve()?;
    let conf = provider_conf_path()?;
    println!(
        "export OPENSSL_CONF={}",
        shell_quote(&conf.display().to_string())
    );
    println!(
        "export PKCS11_PROVIDER_MODULE={}",
        shell_quote(&module.display().to_string())
    );
    if let Ok(softhsm) = std::env::var("SOFTHSM2_CONF") {
        println!("export SOFTHSM2_CONF={}", shell_quote(&softhsm));
    }
    println!("# then e.g.: openssl storeutl -keys -passin env:HSM_DEMO_PIN 'pkcs11:'");
    Ok(())
}

/// openssl-conf/pkcs11.cnf in this source tree when it is there, else an identical
/// copy kept in hsm-demo's data directory.
fn provider_conf_path() -> anyhow::Result<PathBuf> {
    let in_tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openssl-conf/pkcs11.cnf");
    if std::fs::read_to_string(&in_tree).is_ok_and(|text| text == PROVIDER_CONF) {
        return Ok(in_tree);
    }
    let copy = data_dir()?.join("openssl-pkcs11.cnf");
    if std::fs::read_to_string(&copy).is_ok_and(|text| text == PROVIDER_CONF) {
        return Ok(copy);
    }
    std::fs::create_dir_all(data_dir()?)?;
    let _ = std::fs::remove_file(&copy);
    write_new_file(&copy, PROVIDER_CONF.as_bytes(), "provider config")?;
    Ok(copy)
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
