#!/usr/bin/env bash
# Installs what the tests need (scripts/setup.sh) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-kryoptic.sh
cargo test --locked "$@"
