# Seed 001, "Integration Test: Key Lifecycle", verbatim (the tests run it with
# SOFTHSM2_CONF pointing at a fresh token store and the PINs exported, as the README says).
set -euo pipefail

# Full end-to-end test
softhsm2-util --init-token --slot 0 --label "final-test" \
  --so-pin 12345678 --pin 123456

cargo run -- list-slots
# Expected: slot 0, label "final-test", initialized

cargo run -- key-ceremony
# Expected: [Step 1-4] output; root-ca-key generated

cargo run -- generate-key --label service-key
# Expected: "Generated ECDSA P-256 key pair, label: service-key"

SIG=$(cargo run -- sign --label service-key --data "hello cert world" | grep "Signature:" | awk '{print $2}')
cargo run -- verify --label service-key --data "hello cert world" --sig $SIG
# Expected: "Signature verified OK"

cargo run -- verify --label service-key --data "tampered data" --sig $SIG && exit 99
# Expected: error (signature verification failed)
echo "tamper exit: $?"
