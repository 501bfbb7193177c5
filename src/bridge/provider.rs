//! The pkcs11-provider in this process: loaded from openssl-conf/pkcs11.cnf (compiled
//! in, read from memory), and token keys loaded through OSSL_STORE by PKCS#11 URI.

use std::path::Path;

use cryptoki::types::AuthPin;
use openssl::pkey::{PKey, Private};
use secrecy::ExposeSecret;

use super::{clear_openssl_errors, ffi, openssl_reason, BridgeError};

/// openssl-conf/pkcs11.cnf, compiled in so the binary works from any directory.
pub const PROVIDER_CONF: &str = include_str!("../../openssl-conf/pkcs11.cnf");

/// Proof that the pkcs11-provider is loaded into OpenSSL's default library context.
/// The PKCS#11 module it drives comes from `PKCS11_PROVIDER_MODULE`, which main sets
/// to the module cryptoki loads, so both use one module.
pub struct Provider {
    _private: (),
}

impl Provider {
    /// Loads openssl-conf/pkcs11.cnf with `provider` (the pkcs11.so path) filled in. If
    /// the user's own OPENSSL_CONF already loaded a "pkcs11" provider, that one is used.
    pub fn load(provider: &Path) -> Result<Provider, BridgeError> {
        clear_openssl_errors();
        if !ffi::provider_available("pkcs11") {
            if !provider.exists() {
                return Err(BridgeError::ProviderMissing {
                    path: provider.to_path_buf(),
                });
            }
            let conf = PROVIDER_CONF.replacen(
                "[pkcs11_sect]\n",
                &format!("[pkcs11_sect]\nmodule = {}\n", provider.display()),
                1,
            );
            ffi::load_config_text(&conf).map_err(|e| BridgeError::Config(e.to_string()))?;
            if !ffi::provider_available("pkcs11") {
                return Err(BridgeError::ProviderMissing {
                    path: provider.to_path_buf(),
                });
            }
        }
        clear_openssl_errors();
        Ok(Provider { _private: () })
    }

    /// Loads the one private key `uri` names, through OSSL_STORE and the provider. The
    /// provider gets the PIN from a UI_METHOD (in memory, asked at most once).
    pub fn private_key(&self, uri: &str, pin: &AuthPin) -> Result<PKey<Private>, BridgeError> {
        clear_openssl_errors();
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
