# Seed 000, "Integration Test: Full Key Lifecycle", verbatim.
set -euo pipefail

# 1. Initialize SoftHSM2 token (if not already done)
softhsm2-util --init-token --slot 0 --label "test-hsm" \
  --so-pin 12345678 --pin 123456

# 2. List slots
cargo run -- list-slots

# 3. Key ceremony (generates root-ca-key)
cargo run -- key-ceremony

# 4. Sign a payload
cargo run -- sign --label root-ca-key --data "certificate signing request"
# Save the hex output as $SIG
SIG=$(cargo run -- sign --label root-ca-key --data "certificate signing request" | grep "Signature:" | awk '{print $2}')

# 5. Verify
cargo run -- verify --label root-ca-key \
  --data "certificate signing request" --sig $SIG
# Expected: "Signature verified OK"

# 6. Tamper test
cargo run -- verify --label root-ca-key \
  --data "TAMPERED data" --sig $SIG && exit 99
# Expected: "signature verification failed"
echo "tamper exit: $?"
