#!/usr/bin/env bash
# Benchmarks (never run as tests): `hsm-demo bench` on a throwaway SoftHSM2 token, then
# whole-process wall time of one signature, as paired alternating runs of
#   hsm-demo sign  |  openssl dgst -sha256 -sign (same provider config, same key)  |  pkcs11-tool --sign
# and the ratios of REPEAT further `bench --json` runs (median, min, max): one run's
# ratios move with the machine's other load.
# Tunables: COUNT (signatures per path, default 2000), THREADS (default 2), ROUNDS (default 60),
# REPEAT (default 9), KEYGENS (key generations per algorithm, default 5), ALGO_COUNT (signatures
# per algorithm, default 500), FILES (files for the many-files comparison, default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --quiet
COUNT=${COUNT:-2000} THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-60} REPEAT=${REPEAT:-9}
KEYGENS=${KEYGENS:-5} ALGO_COUNT=${ALGO_COUNT:-500} FILES=${FILES:-1000}
ROOT=$PWD
BIN="$ROOT/target/release/hsm-demo"
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > "$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf" HSM_DEMO_PIN=123456
unset HSM_DEMO_MODULE OPENSSL_CONF PKCS11_PROVIDER_MODULE
softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin "$HSM_DEMO_PIN" >/dev/null
"$BIN" generate-key --label bench-key --id 01 >/dev/null

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(openssl version)"
echo "== software ceiling: openssl speed ecdsap256"
openssl speed -seconds 3 ecdsap256 2>/dev/null | tail -1
echo
echo "== hsm-demo bench --label bench-key --count $COUNT --threads $THREADS"
"$BIN" bench --label bench-key --count "$COUNT" --threads "$THREADS"

echo
echo "== ratios over $REPEAT more runs of hsm-demo bench --count $COUNT --threads $THREADS --json"
for _ in $(seq "$REPEAT"); do "$BIN" bench --label bench-key --count "$COUNT" --threads "$THREADS" --json; done > "$work/runs.json"
python3 - "$work/runs.json" <<'PY'
import json, statistics, sys
text, dec, i, runs = open(sys.argv[1]).read(), json.JSONDecoder(), 0, []
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    run, i = dec.raw_decode(text, i)
    runs.append(run)
def show(name, xs):
    print(f"  {name:<44} median {statistics.median(xs):.2f}  (min {min(xs):.2f}, max {max(xs):.2f})")
rate = lambda run, key, path: next(r["per_second"] for r in run[key] if r["path"] == path)
show("(a)/(b), 1 thread", [r["ratios"]["evp_over_cryptoki"] for r in runs])
if runs[0]["multi_thread"]:
    show("(a)/(b), threads", [rate(r, "multi_thread", "evp_provider") / rate(r, "multi_thread", "cryptoki_c_sign") for r in runs])
    for path in ("evp_provider", "cryptoki_c_sign", "software_key"):
        show(f"scaling, {path}", [dict(r["ratios"]["scaling"])[path] for r in runs])
show("(a)/(c), 1 thread", [r["ratios"]["evp_over_software"] for r in runs])
PY

echo
echo "== whole process, one signature, $ROUNDS paired alternating rounds (median ms)"
head -c 1024 /dev/urandom > "$work/data"
openssl dgst -sha256 -binary "$work/data" > "$work/digest"
run_hsm_demo() { "$BIN" sign --label bench-key --in "$work/data" >/dev/null; }
run_openssl() {
    OPENSSL_CONF="$ROOT/openssl-conf/pkcs11.cnf" PKCS11_PROVIDER_MODULE="$SOFTHSM" \
        openssl dgst -sha256 -sign 'pkcs11:token=bench;object=bench-key;type=private' \
        -passin env:HSM_DEMO_PIN -out /dev/null "$work/data"
}
# pkcs11-tool takes its PIN in argv; acceptable for this throwaway token only.
run_pkcs11_tool() {
    pkcs11-tool --module "$SOFTHSM" --token-label bench --login --pin "$HSM_DEMO_PIN" \
        --sign --mechanism ECDSA --id 01 --input-file "$work/digest" --output-file /dev/null >/dev/null 2>&1
}
names=(hsm_demo openssl pkcs11_tool)
for n in "${names[@]}"; do : > "$work/$n.ms"; done
for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then order=(hsm_demo openssl pkcs11_tool); else order=(pkcs11_tool openssl hsm_demo); fi
    for n in "${order[@]}"; do
        t0=$(date +%s%N); "run_$n"; t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >> "$work/$n.ms"
    done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
h=$(median "$work/hsm_demo.ms"); o=$(median "$work/openssl.ms"); p=$(median "$work/pkcs11_tool.ms")
printf '  %-40s %8.2f\n' "hsm-demo sign" "$h" "openssl dgst -sha256 -sign (provider)" "$o" "pkcs11-tool --sign -m ECDSA" "$p"
awk -v h="$h" -v o="$o" -v p="$p" 'BEGIN { printf "  hsm-demo / openssl: %.2f   hsm-demo / pkcs11-tool: %.2f\n", h / o, h / p }'

echo
echo "== every algorithm: whole-process generate-key (median of $KEYGENS, ms) and signatures/s, 1 thread, $ALGO_COUNT signatures"
printf '  %-10s %12s %14s %14s %14s %8s\n' algorithm "keygen ms" "(a) provider" "(b) C_Sign" "(c) software" "(a)/(b)"
for algo in ec-p256 ec-p384 ec-p521 rsa-2048 rsa-3072 rsa-4096 ed25519; do
    : > "$work/keygen.ms"
    for k in $(seq "$KEYGENS"); do
        t0=$(date +%s%N); "$BIN" generate-key --label "g-$algo-$k" --algo "$algo" >/dev/null; t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }' >> "$work/keygen.ms"
    done
    "$BIN" bench --label "g-$algo-1" --count "$ALGO_COUNT" --json > "$work/algo.json"
    python3 - "$work/algo.json" "$algo" "$(median "$work/keygen.ms")" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
rate = {r["path"]: r["per_second"] for r in run["one_thread"]}
print(f"  {sys.argv[2]:<10} {float(sys.argv[3]):12.1f} {rate['evp_provider']:14.0f} {rate['cryptoki_c_sign']:14.0f}"
      f" {rate['software_key']:14.0f} {rate['evp_provider'] / rate['cryptoki_c_sign']:8.2f}")
PY
done

echo
echo "== thread scaling: prepared contexts against a context per signature (--implicit-fetch), $REPEAT runs each, alternating"
for _ in $(seq "$REPEAT"); do
    "$BIN" bench --label bench-key --count "$COUNT" --threads "$THREADS" --json >> "$work/prepared.json"
    "$BIN" bench --label bench-key --count "$COUNT" --threads "$THREADS" --implicit-fetch --json >> "$work/implicit.json"
done
python3 - "$work/prepared.json" "$work/implicit.json" <<'PY'
import json, statistics, sys
def load(path):
    text, dec, i, runs = open(path).read(), json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return runs
        run, i = dec.raw_decode(text, i)
        runs.append(run)
rate = lambda run, key, path: next(r["per_second"] for r in run[key] if r["path"] == path)
print(f"  {'path':<18} {'mode':<10} {'1 thread/s':>11} {'2 threads/s':>12} {'scaling':>8}")
for path in ("evp_provider", "cryptoki_c_sign", "software_key"):
    for name, runs in (("implicit", load(sys.argv[2])), ("prepared", load(sys.argv[1]))):
        one = statistics.median(rate(r, "one_thread", path) for r in runs)
        two = statistics.median(rate(r, "multi_thread", path) for r in runs)
        sc = statistics.median(dict(r["ratios"]["scaling"])[path] for r in runs)
        print(f"  {path:<18} {name:<10} {one:11.0f} {two:12.0f} {sc:7.2f}x")
PY

echo
echo "== $THREADS processes at once against one (hsm-demo bench --processes $THREADS --count $COUNT)"
"$BIN" bench --label bench-key --count "$COUNT" --processes "$THREADS" | tail -n +3

echo
echo "== OpenSSL alone (scripts/repro/ossl_threads.c: software key, explicit fetch, prepared contexts, no token)"
cc -O2 -Wall -o "$work/ossl_threads" "$ROOT/scripts/repro/ossl_threads.c" -lcrypto -lpthread
"$work/ossl_threads" 20000 "$REPEAT"

echo
echo "== many files in one process: $FILES files of 1 KiB"
mkdir "$work/files" "$work/sigs" "$work/sigs1" "$work/sigs2"
for i in $(seq "$FILES"); do head -c 1024 /dev/urandom > "$work/files/f$i"; done
(cd "$work/files" && ls f*) | sed "s|^|files/|" > "$work/manifest"
t0=$(date +%s%N)
"$BIN" sign --label bench-key --manifest "$work/manifest" --out-dir "$work/sigs" | tail -1 | sed 's/^/  /'
t1=$(date +%s%N)
for f in "$work"/files/f*; do "$BIN" sign --label bench-key --in "$f" --out "$work/sigs1/$(basename "$f").sig" >/dev/null; done
t2=$(date +%s%N)
for f in "$work"/files/f*; do
    OPENSSL_CONF="$ROOT/openssl-conf/pkcs11.cnf" PKCS11_PROVIDER_MODULE="$SOFTHSM" \
        openssl dgst -sha256 -sign 'pkcs11:token=bench;object=bench-key;type=private' \
        -passin env:HSM_DEMO_PIN -out "$work/sigs2/$(basename "$f").sig" "$f"
done
t3=$(date +%s%N)
bench_rate=$("$BIN" bench --label bench-key --count "$COUNT" --json | python3 -c 'import json,sys; print(next(r["per_second"] for r in json.load(sys.stdin)["one_thread"] if r["path"] == "evp_provider"))')
python3 - "$FILES" "$t0" "$t1" "$t2" "$t3" "$bench_rate" <<'PY'
import sys
n, t0, t1, t2, t3, bench = int(sys.argv[1]), *map(int, sys.argv[2:6]), float(sys.argv[6])
batch, per_file, ossl = n / ((t1 - t0) / 1e9), n / ((t2 - t1) / 1e9), n / ((t3 - t2) / 1e9)
print(f"  {'hsm-demo sign --manifest (one process, whole run)':<52} {batch:9.0f}/s")
print(f"  {'hsm-demo sign --in F, one process per file':<52} {per_file:9.0f}/s")
print(f"  {'openssl dgst -sha256 -sign (provider), per file':<52} {ossl:9.0f}/s")
print(f"  {'hsm-demo bench, path (a), 1 thread':<52} {bench:9.0f}/s")
print(f"  batch / bench {batch / bench:.2f}   batch / one process per file {batch / per_file:.1f}   batch / openssl loop {batch / ossl:.1f}")
PY
