#!/usr/bin/env bash
# attestation_cli - the real `umbra attestation verify` binary on the SEV-SNP and TDX vectors of
# ../shared/vectors: genuine reports verify (exit 0), a tampered copy, a wrong measurement
# policy, missing certificates and a `none` evidence without --insecure-dev are refused (exit 1,
# one "refused: " line), usage errors exit 2, --json parses with jq, and the agent key/nonce
# binding holds for the right nonce only (through platform none, the only one whose
# report_data we can choose here).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${TEST_BUILD_DIR:-$here/build}
umbra=$build/cli/umbra
vectors=${ATTEST_VECTORS:-$here/../shared/vectors}
snp=$vectors/sev-snp
tdx=$vectors/tdx
dir=$(mktemp -d /tmp/umbra-attestation-cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT

fail () { echo "FAIL: $*"; exit 1; }
[ -x "$umbra" ] || fail "no $umbra (set TEST_BUILD_DIR)"
[ -f "$snp/EXPECTED_SNP.json" ] || fail "no vectors at $vectors"
command -v jq >/dev/null || fail "jq is needed"

# expect CODE WHAT ARGS...: runs `umbra attestation verify ARGS`, requires exit CODE
expect () {
    local code=$1 what=$2
    shift 2
    local rc=0
    "$umbra" attestation verify "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    if [ "$rc" -ne "$code" ]; then
        echo "stdout:"; cat "$dir/out"; echo "stderr:"; cat "$dir/err"
        fail "$what: exit $rc, expected $code"
    fi
    if [ "$code" -eq 1 ]; then
        [ "$(grep -c '^refused: ' "$dir/err")" -eq 1 ] || { cat "$dir/err"; fail "$what: no single 'refused: ' line"; }
    fi
    echo "ok   $what (exit $code)"
}

milan_report=$snp/virtee-sev/report_milan.bin
milan_vcek=$snp/virtee-sev/vcek_milan.der
milan_chain=$snp/virtee-sev/cert_chain_milan
milan_measurement=$(jq -r '.[] | select(.report == "sev-snp/virtee-sev/report_milan.bin") | .fields.measurement' \
                    "$snp/EXPECTED_SNP.json")
[ ${#milan_measurement} -eq 96 ] || fail "no measurement in EXPECTED_SNP.json"

# genuine SNP reports
expect 0 "genuine SNP report (virtee Milan, VCEK, KDS chain)" \
    --platform snp --evidence "$milan_report" --vcek "$milan_vcek" --chain "$milan_chain"
grep -q "NO MEASUREMENT IS PINNED" "$dir/err" || fail "no loud warning without --policy"
grep -q "^genuine: snp" "$dir/out" || fail "no 'genuine' line"
echo "ok   without --policy it says loudly that no measurement is pinned"
expect 0 "genuine SNP report (trustee, VCEK)" --platform snp --evidence "$snp/trustee/test-report.bin" \
    --vcek "$snp/trustee/test-vcek.der" --chain "$snp/trustee/milan_ask_ark_asvk.pem"
expect 0 "genuine VLEK-signed report at a time inside the VLEK's validity" \
    --platform snp --evidence "$snp/trustee/test-vlek-report.bin" --vcek "$snp/trustee/test-vlek.der" \
    --chain "$snp/trustee/milan_ask_ark_asvk.pem" --time 2025-06-01T00:00:00Z
expect 1 "the same VLEK report now (the VLEK has expired)" \
    --platform snp --evidence "$snp/trustee/test-vlek-report.bin" --vcek "$snp/trustee/test-vlek.der" \
    --chain "$snp/trustee/milan_ask_ark_asvk.pem"
grep -q "expired" "$dir/err" || fail "the reason does not say expired"

# certificates the TEE supplied (one PEM bundle, VCEK first) stand in for --vcek/--chain
openssl x509 -inform DER -in "$milan_vcek" -out "$dir/certs.pem"
cat "$milan_chain" >>"$dir/certs.pem"
expect 0 "genuine SNP report with the evidence's certificates (--certs)" \
    --platform snp --evidence "$milan_report" --certs "$dir/certs.pem"
expect 1 "SNP report without a chain (fails closed)" \
    --platform snp --evidence "$milan_report" --vcek "$milan_vcek"
grep -q "missing certificate" "$dir/err" || fail "the reason does not say missing certificate"

# --json: parsed fields
expect 0 "--json" --platform snp --evidence "$milan_report" --vcek "$milan_vcek" --chain "$milan_chain" --json
[ "$(jq -r .report.measurement "$dir/out")" = "$milan_measurement" ] || fail "--json measurement"
[ "$(jq -r .platform "$dir/out")" = snp ] || fail "--json platform"
[ "$(jq -r .genuine "$dir/out")" = true ] || fail "--json genuine"
[ "$(jq -r .product "$dir/out")" = Milan ] || fail "--json product"
[ "$(jq -r .report.reported_tcb.microcode "$dir/out")" = \
  "$(jq -r '.[] | select(.report == "sev-snp/virtee-sev/report_milan.bin") | .fields.reported_tcb.microcode' \
     "$snp/EXPECTED_SNP.json")" ] || fail "--json reported_tcb"
echo "ok   --json fields match EXPECTED_SNP.json (measurement, product, reported TCB)"

# tampered copies
cp "$milan_report" "$dir/tampered.bin"
printf '\x01' | dd of="$dir/tampered.bin" bs=1 seek=$((0x90)) conv=notrunc status=none
expect 1 "tampered SNP report (measurement byte changed)" \
    --platform snp --evidence "$dir/tampered.bin" --vcek "$milan_vcek" --chain "$milan_chain"
grep -q "signature does not verify" "$dir/err" || fail "the reason does not name the signature"
head -c 1000 "$milan_report" >"$dir/short.bin"
expect 1 "truncated SNP report" --platform snp --evidence "$dir/short.bin" --vcek "$milan_vcek" --chain "$milan_chain"
expect 1 "a report checked with another chip's VCEK" --platform snp --evidence "$milan_report" \
    --vcek "$snp/trustee/test-vcek.der" --chain "$milan_chain"

# policies
printf '{"snp": {"measurements": ["%s"], "max_vmpl": 0, "product": "Milan"}}\n' "$milan_measurement" >"$dir/good.json"
expect 0 "policy pinning the report's measurement" --platform snp --evidence "$milan_report" \
    --vcek "$milan_vcek" --chain "$milan_chain" --policy "$dir/good.json"
grep -q "NO MEASUREMENT" "$dir/err" && fail "warned although the measurement is pinned"
printf '{"snp": {"measurements": ["%096d"]}}\n' 0 >"$dir/wrong.json"
expect 1 "policy with a wrong measurement" --platform snp --evidence "$milan_report" \
    --vcek "$milan_vcek" --chain "$milan_chain" --policy "$dir/wrong.json"
grep -q "policy: measurement" "$dir/err" || fail "the reason does not name the measurement"
printf '{"snp": {"measurements": []}}\n' >"$dir/empty.json"
expect 1 "policy with an empty measurements list (allows none)" --platform snp --evidence "$milan_report" \
    --vcek "$milan_vcek" --chain "$milan_chain" --policy "$dir/empty.json"
printf '{"snp": {"measurement": ["%s"]}}\n' "$milan_measurement" >"$dir/typo.json"
expect 1 "policy with a misspelt key" --platform snp --evidence "$milan_report" \
    --vcek "$milan_vcek" --chain "$milan_chain" --policy "$dir/typo.json"
grep -q "unknown key 'measurement'" "$dir/err" || fail "the reason does not name the unknown key"
expect 1 "a report that allows debugging, default policy" --platform snp \
    --evidence "$snp/go-sev-guest/attestation.bin" --vcek "$snp/go-sev-guest/vcek.testcer" \
    --chain "$snp/go-sev-guest/ask_ark_milan.pem"
grep -q "DEBUG" "$dir/err" || fail "the reason does not say DEBUG"

# TDX
tdx_quote=$tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat
if [ -f "$tdx_quote" ]; then
    expect 0 "genuine TDX quote (its own PCK chain)" --platform tdx --evidence "$tdx_quote" --json
    mr_td=$(jq -r .quote.body.mr_td "$dir/out")
    [ ${#mr_td} -eq 96 ] || fail "--json has no quote.body.mr_td"
    printf '{"tdx": {"mr_td": ["%s"]}}\n' "$mr_td" >"$dir/tdx.json"
    expect 0 "TDX quote with its MRTD pinned" --platform tdx --evidence "$tdx_quote" --policy "$dir/tdx.json"
    printf '{"tdx": {"mr_td": ["%096d"]}}\n' 0 >"$dir/tdx-wrong.json"
    expect 1 "TDX quote with a wrong MRTD policy" --platform tdx --evidence "$tdx_quote" --policy "$dir/tdx-wrong.json"
    expect 1 "an SNP report as TDX" --platform tdx --evidence "$milan_report"
fi

# none
: >"$dir/none.bin"
expect 1 "none evidence without --insecure-dev" --platform none --evidence "$dir/none.bin"
expect 0 "none evidence with --insecure-dev" --platform none --evidence "$dir/none.bin" --insecure-dev
grep -q "insecure: no TEE" "$dir/err" || fail "no loud 'insecure: no TEE'"

# binding: report_data = SHA-512("umbra-attest-v1" || agent key || nonce), through none
agent_key='rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'
nonce=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
python3 - "$agent_key" "$nonce" "$dir/bound.bin" <<'EOF'
import hashlib, sys
alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
z85, nonce, out = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
key = b""
for i in range(0, len(z85), 5):
    value = 0
    for c in z85[i:i + 5]:
        value = value * 85 + alphabet.index(c)
    key += value.to_bytes(4, "big")
open(out, "wb").write(hashlib.sha512(b"umbra-attest-v1" + key + nonce).digest())
EOF
expect 0 "none evidence bound to the agent key and nonce" --platform none --evidence "$dir/bound.bin" \
    --insecure-dev --agent-key "$agent_key" --nonce "$nonce"
grep -q "report_data matches" "$dir/out" || fail "the binding is not reported"
expect 1 "the same evidence with another nonce" --platform none --evidence "$dir/bound.bin" \
    --insecure-dev --agent-key "$agent_key" --nonce "${nonce%??}ff"
grep -q "wrong agent key or nonce" "$dir/err" || fail "the reason does not name the binding"
expect 1 "an SNP report (fixed report_data) with an agent key and nonce" --platform snp \
    --evidence "$milan_report" --vcek "$milan_vcek" --chain "$milan_chain" --agent-key "$agent_key" --nonce "$nonce"

# unreadable input is a refusal, malformed options are usage errors
expect 1 "unreadable evidence file" --platform snp --evidence "$dir/missing.bin"
expect 2 "missing --evidence" --platform snp
expect 2 "missing --platform" --evidence "$milan_report"
expect 2 "unknown --platform" --platform sgx --evidence "$milan_report"
expect 2 "unknown option" --platform snp --evidence "$milan_report" --frobnicate
expect 2 "bad --time" --platform snp --evidence "$milan_report" --time yesterday
expect 2 "--nonce without --agent-key" --platform none --evidence "$dir/none.bin" --nonce "$nonce"
expect 2 "bad --agent-key" --platform none --evidence "$dir/none.bin" --nonce "$nonce" --agent-key xyz
rc=0; "$umbra" attestation frobnicate >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "unknown attestation command: exit $rc"
echo "ok   unknown attestation command (exit 2)"
"$umbra" attestation help | grep -q -- "--insecure-dev" || fail "attestation help"
echo "ok   umbra attestation help"
echo "attestation_cli: all checks passed"
