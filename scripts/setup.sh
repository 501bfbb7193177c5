#!/usr/bin/env bash
# Installs what hsm-demo needs on Debian 12 (bookworm): SoftHSM2, the OpenSSL
# pkcs11-provider (bookworm-backports), OpenSC, GnuTLS and p11-kit tools, the
# OpenSSL headers, and pkilint (the independent certificate linter the tests run).
# Idempotent: a machine that already has everything is left untouched.
# Works as root or through sudo.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

APT_PACKAGES=(softhsm2 opensc gnutls-bin p11-kit p11-kit-modules libssl-dev pkg-config openssl python3-venv)
BACKPORTS_PACKAGES=(pkcs11-provider)
BACKPORTS_LINE='deb http://deb.debian.org/debian bookworm-backports main'
BACKPORTS_FILE=/etc/apt/sources.list.d/hsm-demo-bookworm-backports.list

missing=()
for p in "${APT_PACKAGES[@]}" "${BACKPORTS_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    # docs/platform.md "Packages": pkcs11-provider is only in bookworm-backports.
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "$BACKPORTS_LINE" | "${SUDO[@]}" tee "$BACKPORTS_FILE" >/dev/null
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends -t bookworm-backports \
        "${BACKPORTS_PACKAGES[@]}" >/dev/null
fi

# pkilint lives in a project-local virtualenv (PEP 668 forbids a system pip install).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/target/pkilint-venv"
if [ ! -x "$VENV/bin/lint_cabf_serverauth_cert" ]; then
    echo "setup: installing pkilint into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'pkilint>=0.10,<1'
fi
