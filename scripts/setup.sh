#!/usr/bin/env bash
# Installs what hsm-demo needs on Debian 12 (bookworm): SoftHSM2, the OpenSSL
# pkcs11-provider (bookworm-backports), OpenSC, GnuTLS and p11-kit tools, opencryptoki
# (the third module the tests run everything on), the OpenSSL headers, and pkilint
# (the independent certificate linter the tests run), and NSS's tools (vfychain: the TLS
# chains the suite issues, checked by another verifier).
# (scripts/build-kryoptic.sh, run by scripts/test.sh, builds the second soft token.)
# Idempotent: a machine that already has everything is left untouched.
# Works as root or through sudo.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

APT_PACKAGES=(softhsm2 opensc gnutls-bin p11-kit p11-kit-modules libssl-dev pkg-config openssl python3-venv
              man-db bsdextrautils libclang-dev opencryptoki libopencryptoki0 time libnss3-tools faketime jq sqlite3)
BACKPORTS_PACKAGES=(pkcs11-provider)
BACKPORTS_FILE=/etc/apt/sources.list.d/hsm-demo-bookworm-backports.list

# The mirror this machine already uses for bookworm main: backports comes from the same
# place (docs/platform.md "Packages"). deb822 .sources files first, then one-line lists.
main_archive_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             /(^|\n)Suites:[^\n]*[[:space:]]bookworm([[:space:]]|$)/ {
                 for (i = 1; i <= NF; i++)
                     if ($i ~ /^URIs:/) { sub(/^URIs:[[:space:]]*/, "", $i); split($i, u, " "); print u[1]; exit }
             }' "$f"
    done | head -n 1
    # No one-line source is fine (grep exits 1 or 2): the deb822 one above may exist.
    { grep -hsE '^deb[[:space:]]+[^[:space:]]+[[:space:]]+bookworm[[:space:]]' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list || true; } | awk '{ print $2 }' | head -n 1
}

missing=()
for p in "${APT_PACKAGES[@]}" "${BACKPORTS_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# The running pkcsslotd daemons (opencryptoki), from /proc: procps may be absent.
slotd_pids() {
    local d
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = pkcsslotd ] && echo "${d#/proc/}"
    done
    return 0
}

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    slotd_before=$(slotd_pids)
    # docs/platform.md "Packages": pkcs11-provider is only in bookworm-backports.
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        uri=$(main_archive_uri | head -n 1)
        if [ -z "$uri" ]; then
            echo "setup: no bookworm main archive in apt's sources; add a bookworm-backports source for pkcs11-provider" >&2
            exit 1
        fi
        echo "deb $uri bookworm-backports main" | "${SUDO[@]}" tee "$BACKPORTS_FILE" >/dev/null
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends -t bookworm-backports \
        "${BACKPORTS_PACKAGES[@]}" >/dev/null
    # opencryptoki's postinst starts pkcsslotd where the init system allows it. The
    # tests start their own daemon on an empty token store (tests/common/opencryptoki.rs)
    # and refuse to touch one they did not start: stop what this install started.
    if [ -z "$slotd_before" ] && [ -n "$(slotd_pids)" ]; then
        echo "setup: stopping the pkcsslotd the opencryptoki package started" >&2
        "${SUDO[@]}" kill $(slotd_pids) || true
    fi
fi

# pkilint lives in a project-local virtualenv (PEP 668 forbids a system pip install).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/target/pkilint-venv"
if [ ! -x "$VENV/bin/lint_cabf_serverauth_cert" ]; then
    echo "setup: installing pkilint into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'pkilint>=0.10,<1'
fi

