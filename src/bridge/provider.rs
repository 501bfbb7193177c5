//! The pkcs11-provider in this process: loaded from openssl-conf/pkcs11.cnf, and
//! token keys loaded through OSSL_STORE by PKCS#11 URI.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;
use openssl::pkey::{PKey, Private};
use secrecy::ExposeSecret;

use super::{clear_openssl_errors, ffi, openssl_reason, BridgeError};

/// openssl-conf/pkcs11.cnf, compiled in so the binary works from any directory.
pub const PROVIDER_CONF: &str = include_str!("../../openssl-conf/pkcs11.cnf");

/// The pkcs11-provider module path recorded by build.rs.
pub const DEFAULT_PROVIDER: &str = env!("HSM_DEMO_DEFAULT_PROVIDER");

/// The provider module hsm-demo loads: `HSM_DEMO_PROVIDER`, else the build-time path.
pub fn provider_module_path() -> PathBuf {
    std::env::var_os("HSM_DEMO_PROVIDER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PROVIDER))
}

/// Proof that the pkcs11-provider is loaded into OpenSSL's default library context.
pub struct Provider {
    _private: (),
}

impl Provider {
    /// Points the provider at `module` (the same PKCS#11 library cryptoki loaded) and
    /// loads openssl-conf/pkcs11.cnf with this build's provider path filled in. If the
    /// user's own OPENSSL_CONF already loaded a "pkcs11" provider, that one is used.
    pub fn load(module: &Path) -> Result<Provider, BridgeError> {
        // The provider reads PKCS11_PROVIDER_MODULE at its first use; it overrides
        // pkcs11-module-path, so cryptoki and the provider share one module.
        std::env::set_var("PKCS11_PROVIDER_MODULE", module);
        if !ffi::provider_available("pkcs11") {
            let provider = provider_module_path();
            if !provider.exists() {
                return Err(BridgeError::ProviderMissing { path: provider });
            }
            let conf = PROVIDER_CONF.replacen(
                "[pkcs11_sect]\n",
                &format!("[pkcs11_sect]\nmodule = {}\n", provider.display()),
                1,
            );
            let mut file = tempfile::Builder::new()
                .prefix("hsm-demo-openssl-")
                .suffix(".cnf")
                .tempfile()
                .map_err(|e| BridgeError::Io {
                    op: "write the provider config",
                    source: e,
                })?;
            file.write_all(conf.as_bytes())
                .and_then(|_| file.flush())
                .map_err(|e| BridgeError::Io {
                    op: "write the provider config",
                    source: e,
                })?;
            ffi::load_config(&file.path().display().to_string())
                .map_err(BridgeError::openssl("load openssl-conf/pkcs11.cnf"))?;
            if !ffi::provider_available("pkcs11") {
                return Err(BridgeError::ProviderMissing { path: provider });
            }
        }
        clear_openssl_errors();
        Ok(Provider { _private: () })
    }

    /// Loads the one private key `uri` names, through OSSL_STORE and the provider. The
    /// provider gets the PIN from a UI_METHOD (in memory, asked at most once).
    pub fn private_key(&self, uri: &str, pin: &AuthPin) -> Result<PKey<Private>, BridgeError> {
        let loaded = ffi::load_private_keys(uri, pin.expose_secret().as_bytes()).map_err(|e| {
            BridgeError::KeyLoad {
                uri: uri.to_string(),
                reason: openssl_reason(&e),
            }
        })?;
        clear_openssl_errors();
        let count = loaded.keys.len();
        let mut keys = loaded.keys.into_iter();
        match (keys.next(), count) {
            (Some(key), 1) => Ok(key),
            (None, _) => Err(BridgeError::KeyLoad {
                uri: uri.to_string(),
                reason: if loaded.pin_requests > 1 {
                    "the provider asked for the PIN again after a failed login".into()
                } else {
                    "the provider found no private key".into()
                },
            }),
            (Some(_), n) => Err(BridgeError::KeyLoad {
                uri: uri.to_string(),
                reason: format!("{n} private keys match"),
            }),
        }
    }
}
