//! Build-time checks: refuse OpenSSL older than 3.0, emit version cfgs, and record
//! where the pkcs11-provider and SoftHSM2 modules live on the build machine.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian and other distributions put SoftHSM2's PKCS#11 module.
const SOFTHSM_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=HSM_DEMO_BUILD_SOFTHSM");
    println!("cargo::rerun-if-env-changed=HSM_DEMO_BUILD_PROVIDER");
    println!("cargo::rustc-check-cfg=cfg(ossl300)");
    println!("cargo::rustc-check-cfg=cfg(ossl320)");

    check_openssl_version();

    let softhsm = std::env::var("HSM_DEMO_BUILD_SOFTHSM")
        .ok()
        .or_else(|| first_existing(SOFTHSM_CANDIDATES))
        .unwrap_or_else(|| SOFTHSM_CANDIDATES[0].to_string());
    println!("cargo::rustc-env=HSM_DEMO_DEFAULT_SOFTHSM={softhsm}");

    let provider = std::env::var("HSM_DEMO_BUILD_PROVIDER")
        .ok()
        .unwrap_or_else(|| {
            openssl_modules_dir()
                .join("pkcs11.so")
                .display()
                .to_string()
        });
    println!("cargo::rustc-env=HSM_DEMO_DEFAULT_PROVIDER={provider}");
}

/// openssl-sys publishes the version it found as `DEP_OPENSSL_VERSION_NUMBER` (hex,
/// `0xMNN00PP0L` layout) to crates that depend on it directly.
fn check_openssl_version() {
    let Ok(hex) = std::env::var("DEP_OPENSSL_VERSION_NUMBER") else {
        panic!(
            "hsm-demo: openssl-sys did not report DEP_OPENSSL_VERSION_NUMBER; \
             is this LibreSSL or BoringSSL? hsm-demo needs OpenSSL 3.0 or later"
        );
    };
    let version = u64::from_str_radix(&hex, 16)
        .unwrap_or_else(|_| panic!("hsm-demo: unreadable OpenSSL version number {hex:?}"));
    if version < 0x3000_0000 {
        panic!(
            "hsm-demo needs OpenSSL 3.0 or later (providers, OSSL_STORE); found version \
             number 0x{version:x}. On Debian 12: apt-get install libssl-dev"
        );
    }
    println!("cargo::rustc-cfg=ossl300");
    if version >= 0x3020_0000 {
        println!("cargo::rustc-cfg=ossl320");
    }
}

fn first_existing(paths: &[&str]) -> Option<String> {
    paths
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| p.to_string())
}

/// OpenSSL's provider directory: pkg-config first, then `openssl version -m`.
fn openssl_modules_dir() -> PathBuf {
    let from_pkg_config = Command::new("pkg-config")
        .args(["--variable=modulesdir", "libcrypto"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(dir) = from_pkg_config {
        return PathBuf::from(dir);
    }
    // `openssl version -m` prints: MODULESDIR: "/usr/lib/x86_64-linux-gnu/ossl-modules"
    let from_cli = Command::new("openssl")
        .args(["version", "-m"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .and_then(|s| s.split('"').nth(1).map(str::to_string));
    PathBuf::from(from_cli.unwrap_or_else(|| "/usr/lib/x86_64-linux-gnu/ossl-modules".into()))
}
