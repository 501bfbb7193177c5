#!/usr/bin/env bash
# CA benchmarks (never run as tests), hsm-demo against the openssl CLI with the same
# token key through the same pkcs11-provider config, in one run, alternating:
#   1. a CRL over ENTRIES revoked certificates (default 1,000,000) from one openssl ca
#      index.txt: `hsm-demo crl` (after `ca-init --import-index`) against
#      `openssl ca -gencrl`; wall time and peak RSS (GNU time), ROUNDS pairs (default 3);
#   2. whole-process issuance of a TLS server certificate from a request: `hsm-demo issue`
#      against `openssl x509 -req -CA ... -CAkey pkcs11:...` with the same extensions,
#      ISSUES each per round (default 20), ROUNDS rounds;
#   3. revocation: `hsm-demo revoke --serials-file` of REVOKES serials (default
#      1,000,000) in one transaction, against `openssl ca -revoke` of OPENSSL_REVOKES
#      certificates (default 1,000; one process per certificate, as openssl ca works),
#      reported per serial;
#   4. the audit log of that CA directory after the revocation and a CRL (REVOKES
#      imported records, REVOKES revoke entries, the CRL): `hsm-demo verify-audit`
#      against `sha256sum` of the same audit.log plus one `openssl dgst -verify` per
#      checkpoint, ROUNDS pairs.
# Prints medians and ratios (hsm-demo / openssl: below 1 is faster or smaller).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked --quiet
ENTRIES=${ENTRIES:-1000000} ROUNDS=${ROUNDS:-3} ISSUES=${ISSUES:-20}
REVOKES=${REVOKES:-1000000} OPENSSL_REVOKES=${OPENSSL_REVOKES:-1000}
BIN="$PWD/target/release/hsm-demo"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir tokens
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" > softhsm2.conf
export SOFTHSM2_CONF="$work/softhsm2.conf" HSM_DEMO_PIN=123456 HSM_DEMO_SO_PIN=12345678
unset HSM_DEMO_MODULE
"$BIN" init-token --label bench >/dev/null
"$BIN" key-ceremony --no-quorum --out root --label root-key >/dev/null
eval "$("$BIN" openssl-env)"
KEY='pkcs11:token=bench;object=root-key;type=private'

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(openssl version)"
echo "== making an index.txt of $ENTRIES revoked certificates"
# make_index N SEED STATUS FILE [SERIALS]: an openssl ca index.txt of N certificates with
# random 16-byte serials, all revoked (R) or all valid (V); SERIALS lists the serials.
make_index() {
    python3 - "$@" <<'PY'
import random, sys
n, seed, status, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
serials = open(sys.argv[5], "w") if len(sys.argv) > 5 else None
rnd = random.Random(seed); seen = set()
revoked = "250102030405Z,keyCompromise" if status == "R" else ""
with open(path, "w") as f:
    while len(seen) < n:
        s = "%032X" % (rnd.getrandbits(126) | 1 << 126)
        if s in seen:
            continue
        seen.add(s)
        f.write("%s\t351231235959Z\t%s\t%s\tunknown\t/CN=c%d\n" % (status, revoked, s, len(seen)))
        if serials:
            serials.write(s + "\n")
PY
}
make_index "$ENTRIES" 1 R index.txt
/usr/bin/time -f "%e %M" -o import.time "$BIN" ca-init --ca ca --cert root/root-ca.pem --label root-key --import-index index.txt >/dev/null
echo "   ca-init --import-index: $(cut -d' ' -f1 import.time) s, $(( $(cut -d' ' -f2 import.time) / 1024 )) MB peak (once)"
cat > ca.cnf <<'CNF'
[ ca ]
default_ca = CA_default
[ CA_default ]
database         = ./index.txt
crlnumber        = ./crlnumber
default_md       = sha256
default_crl_days = 30
crl_extensions   = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
CNF
echo 01 > crlnumber
: > crl.times
for r in $(seq "$ROUNDS"); do
    rm -f h.crl o.crl
    /usr/bin/time -f "hsm-demo %e %M" -a -o crl.times "$BIN" crl --ca ca --out h.crl >/dev/null
    /usr/bin/time -f "openssl %e %M" -a -o crl.times \
        openssl ca -gencrl -config ca.cnf -cert root/root-ca.pem -keyfile "$KEY" -passin env:HSM_DEMO_PIN -out o.crl 2>/dev/null
done
openssl crl -in h.crl -CAfile root/root-ca.pem -noout 2>&1 | sed 's/^/   hsm-demo CRL: /'
openssl crl -in o.crl -CAfile root/root-ca.pem -noout 2>&1 | sed 's/^/   openssl  CRL: /'

echo "== issuance: $ISSUES whole processes per round, $ROUNDS rounds"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
    -subj /CN=leaf.example -addext subjectAltName=DNS:leaf.example -out leaf.csr 2>/dev/null
sed -n '/^\[ tls_server_ext \]/,$p' "$OLDPWD/openssl-conf/profiles/tls-server.cnf" > ext.cnf
"$BIN" ca-init --ca issuing --cert root/root-ca.pem --label root-key >/dev/null
: > issue.times
for r in $(seq "$ROUNDS"); do
    t0=$(date +%s%N)
    for i in $(seq "$ISSUES"); do "$BIN" issue --ca issuing --csr leaf.csr --profile tls-server >/dev/null; done
    t1=$(date +%s%N)
    for i in $(seq "$ISSUES"); do
        openssl x509 -req -in leaf.csr -CA root/root-ca.pem -CAkey "$KEY" -passin env:HSM_DEMO_PIN \
            -extfile ext.cnf -extensions tls_server_ext -days 90 -set_serial "0x$(openssl rand -hex 16)" -out /dev/null 2>/dev/null
    done
    t2=$(date +%s%N)
    echo "hsm-demo $(( (t1 - t0) / ISSUES / 1000 ))" >> issue.times
    echo "openssl $(( (t2 - t1) / ISSUES / 1000 ))" >> issue.times
done

echo "== revocation: $REVOKES serials by hsm-demo, $OPENSSL_REVOKES certificates by openssl ca -revoke"
make_index "$REVOKES" 2 V valid.txt serials.txt
"$BIN" ca-init --ca revoking --cert root/root-ca.pem --label root-key --import-index valid.txt >/dev/null
/usr/bin/time -f "%e %M" -o revoke.time "$BIN" revoke --ca revoking --serials-file serials.txt --reason superseded >/dev/null
# openssl ca -revoke needs the certificate files and an index: a software CA (no token
# work is involved in revoking on either side) issues OPENSSL_REVOKES certificates.
mkdir -p oca && cd oca
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -subj /CN=rev-ca -days 30 -out ca.pem 2>/dev/null
: > index.txt
printf '[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = ./index.txt\ndefault_md = sha256\nunique_subject = no\n' > ca.cnf
for i in $(seq "$OPENSSL_REVOKES"); do
    serial=$(printf '%X' $((i + 4096)))  # even digits, no leading zero: as openssl ca's index writes it
    openssl x509 -req -in ../leaf.csr -CA ca.pem -CAkey ca.key -days 30 -set_serial "0x$serial" -out "c$i.pem" 2>/dev/null
    printf 'V\t351231235959Z\t\t%s\tunknown\t/CN=leaf.example\n' "$serial" >> index.txt
done
t0=$(date +%s%N)
for i in $(seq "$OPENSSL_REVOKES"); do
    openssl ca -config ca.cnf -cert ca.pem -keyfile ca.key -revoke "c$i.pem" -crl_reason superseded 2>/dev/null
done
t1=$(date +%s%N)
echo "$(( (t1 - t0) / 1000 ))" > ../openssl-revoke.us
cd ..

echo "== audit log: verify-audit against sha256sum + one signature check per checkpoint"
"$BIN" crl --ca revoking --out revoking.crl >/dev/null
checkpoints=$(grep -c '"type":"checkpoint"' revoking/audit.log)
tail -n 1 revoking/audit.log | jq -j '"\(.seq - 1) \(.prev)\n"' > head.txt
tail -n 1 revoking/audit.log | jq -r .signature | openssl base64 -d -A > head.sig
: > audit.times
for r in $(seq "$ROUNDS"); do
    /usr/bin/time -f "verify %e %M" -a -o audit.times "$BIN" verify-audit revoking >/dev/null
    /usr/bin/time -f "sha256sum %e %M" -a -o audit.times sha256sum revoking/audit.log >/dev/null
    t0=$(date +%s%N)
    for c in $(seq "$checkpoints"); do
        openssl dgst -sha256 -verify root/root-ca.pub.pem -signature head.sig head.txt >/dev/null
    done
    t1=$(date +%s%N)
    echo "sigs $(( (t1 - t0) / 1000 ))" >> audit.times
done
echo "$(wc -l < revoking/audit.log) $(stat -c %s revoking/audit.log) $checkpoints" > audit.size

python3 - "$REVOKES" "$OPENSSL_REVOKES" <<'PY'
import statistics as st
import sys
revokes, openssl_revokes = int(sys.argv[1]), int(sys.argv[2])
crl = {"hsm-demo": [], "openssl": []}
for line in open("crl.times"):
    who, s, kb = line.split()
    crl[who].append((float(s), int(kb) / 1024))
t = {k: st.median(x[0] for x in v) for k, v in crl.items()}
m = {k: st.median(x[1] for x in v) for k, v in crl.items()}
print("== CRL (median of %d)          wall s   peak MB" % len(crl["openssl"]))
for k in ("hsm-demo", "openssl"):
    print("   %-26s %7.2f  %8.0f" % ("hsm-demo crl" if k == "hsm-demo" else "openssl ca -gencrl", t[k], m[k]))
print("   ratio hsm-demo/openssl     %7.2f  %8.2f" % (t["hsm-demo"] / t["openssl"], m["hsm-demo"] / m["openssl"]))
iss = {"hsm-demo": [], "openssl": []}
for line in open("issue.times"):
    who, us = line.split()
    iss[who].append(int(us) / 1000)
print("== issuance, whole process (median of %d rounds), ms per certificate" % len(iss["openssl"]))
print("   hsm-demo issue             %7.1f" % st.median(iss["hsm-demo"]))
print("   openssl x509 -req          %7.1f" % st.median(iss["openssl"]))
print("   ratio hsm-demo/openssl     %7.2f" % (st.median(iss["hsm-demo"]) / st.median(iss["openssl"])))
secs, kb = open("revoke.time").read().split()
h = float(secs) / revokes * 1e6
o = int(open("openssl-revoke.us").read()) / openssl_revokes
print("== revocation                  total s   per serial us   peak MB")
print("   hsm-demo revoke (%d)   %8.2f   %13.2f   %7.0f" % (revokes, float(secs), h, int(kb) / 1024))
print("   openssl ca -revoke (%d)  %8.2f   %13.2f" % (openssl_revokes, o * openssl_revokes / 1e6, o))
print("   ratio hsm-demo/openssl per serial %.4f" % (h / o))
aud = {"verify": [], "sha256sum": [], "sigs": []}
mem = []
for line in open("audit.times"):
    parts = line.split()
    if parts[0] == "sigs":
        aud["sigs"].append(int(parts[1]) / 1e6)
    else:
        aud[parts[0]].append(float(parts[1]))
        if parts[0] == "verify":
            mem.append(int(parts[2]) / 1024)
entries, size, cps = open("audit.size").read().split()
v, sh, sg = (st.median(aud[k]) for k in ("verify", "sha256sum", "sigs"))
print("== audit log: %s entries, %.0f MB, %s checkpoints (median of %d)" % (entries, int(size) / 1e6, cps, len(aud["verify"])))
print("   hsm-demo verify-audit      %7.2f s  %6.0f MB peak" % (v, st.median(mem)))
print("   sha256sum + %s x openssl dgst -verify %7.2f s (%.2f + %.2f)" % (cps, sh + sg, sh, sg))
print("   ratio verify/(sha256sum + signature checks) %.2f (at most 2)" % (v / (sh + sg)))
PY
