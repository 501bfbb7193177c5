#!/usr/bin/env bash
# Builds kryoptic, the second software token the tests run everything on, from its
# published crate into target/kryoptic/ (once; about two minutes). Needs what
# scripts/setup.sh installs (libclang-dev for its bindgen).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# kryoptic, the pkcs11-provider authors' soft token, from its published crate, built
# into target/kryoptic/ (docs/platform.md, "Other PKCS#11 modules"). OpenSSL 3.0 needs
# the "minimal" feature set with dynamic linking (the default features want 3.2); its
# ossl-sys runs bindgen, hence libclang-dev above.
KRYOPTIC_VERSION=1.5.4
KRYOPTIC="$ROOT/target/kryoptic/libkryoptic_pkcs11.so"
if [ ! -f "$KRYOPTIC" ]; then
    echo "setup: building kryoptic $KRYOPTIC_VERSION into target/kryoptic (about two minutes)" >&2
    fetch="$ROOT/target/kryoptic-fetch"
    mkdir -p "$fetch/src"
    printf '[package]\nname = "kryoptic-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nkryoptic = { version = "=%s", default-features = false }\n' \
        "$KRYOPTIC_VERSION" > "$fetch/Cargo.toml"
    : > "$fetch/src/lib.rs"
    cargo fetch --quiet --manifest-path "$fetch/Cargo.toml"
    src=$(cargo metadata --format-version 1 --manifest-path "$fetch/Cargo.toml" \
        | python3 -c 'import json, sys; m = json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"] == "kryoptic"))')
    rm -rf "$ROOT/target/kryoptic-src"
    cp -r "$(dirname "$src")" "$ROOT/target/kryoptic-src"
    chmod -R u+w "$ROOT/target/kryoptic-src"
    (cd "$ROOT/target/kryoptic-src" && CARGO_TARGET_DIR="$ROOT/target/kryoptic-build" \
        cargo build --quiet --release --no-default-features --features "minimal kryoptic-lib/dynamic")
    mkdir -p "$ROOT/target/kryoptic"
    cp "$ROOT/target/kryoptic-build/release/libkryoptic_pkcs11.so" "$KRYOPTIC.tmp"
    mv "$KRYOPTIC.tmp" "$KRYOPTIC"
fi
