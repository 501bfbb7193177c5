#!/usr/bin/env bash
# The main job, on the embedded default (hsm-demo's own SoftHSM2 token store under
# ~/.local/share/hsm-demo): install what is missing, build, make a fresh token, run the
# seed lifecycle (key ceremony, service key, sign, verify, tamper), the root at work (a
# subordinate CA's request signed by the root, the root's CRL), then check the results
# with the openssl CLI alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --quiet
BIN="$PWD/target/release/hsm-demo"
# The embedded default: no module, no SOFTHSM2_CONF.
unset HSM_DEMO_MODULE SOFTHSM2_CONF OPENSSL_CONF PKCS11_PROVIDER_MODULE
# Demo PINs (real deployments: a prompt, --pin-file, or a secret store feeding the env).
export HSM_DEMO_PIN="${HSM_DEMO_PIN:-123456}" HSM_DEMO_SO_PIN="${HSM_DEMO_SO_PIN:-12345678}"

TOKEN="demo-$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$PWD/target/demo/$TOKEN"
mkdir -p "$OUT"
hsm() { echo "\$ hsm-demo $*" >&2; "$BIN" "$@"; }

hsm init-token --label "$TOKEN"
hsm list-slots
hsm --token "$TOKEN" key-ceremony --out "$OUT/ceremony"
hsm --token "$TOKEN" generate-key --label service-key
SIG=$(hsm --token "$TOKEN" sign --label service-key --data "hello cert world" | awk '/^Signature:/ {print $2}')
echo "Signature: $SIG"
hsm --token "$TOKEN" verify --label service-key --data "hello cert world" --sig "$SIG"
if hsm --token "$TOKEN" verify --label service-key --data "tampered data" --sig "$SIG"; then
    echo "demo: a tampered message verified" >&2
    exit 1
fi
echo "(exit 1 above is the expected tamper failure)"
hsm --token "$TOKEN" list-keys

echo
echo "== The root at work: a subordinate CA from a request, and the root's CRL"
hsm --token "$TOKEN" generate-key --label issuing-ca
hsm --token "$TOKEN" csr --label issuing-ca --subject "/C=US/O=hsm-demo/CN=hsm-demo Issuing CA" --out "$OUT/issuing-ca.csr"
# The CA directory names its key by URI (token included): no --token here.
hsm issue --ca "$OUT/ceremony" --csr "$OUT/issuing-ca.csr" --profile subordinate-ca --path-len 0 --out "$OUT/issuing-ca.pem"
hsm crl --ca "$OUT/ceremony" --out "$OUT/root.crl"
hsm list-issued --ca "$OUT/ceremony"

echo
echo "== Checking the results with the openssl CLI alone"
cd "$OUT/ceremony"
set -x
openssl verify -CAfile root-ca.pem root-ca.pem
openssl dgst -sha256 -verify root-ca.pub.pem -signature transcript.sig transcript.txt
openssl x509 -in root-ca.pem -noout -subject -serial -dates -ext basicConstraints,keyUsage
openssl verify -CAfile root-ca.pem ../issuing-ca.pem
openssl crl -in ../root.crl -CAfile root-ca.pem -noout
set +x

echo
echo "== Checking the whole ceremony directory with no token and no PIN"
"$BIN" --module /nonexistent.so verify-ceremony "$OUT/ceremony"
