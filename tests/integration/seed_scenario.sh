#!/usr/bin/env bash
# seed_scenario.sh - the participants' side end to end, against real umbra-agent processes
# (standalone mode, --attestation none) and the real `umbra` CLI.
#
#     tests/integration/seed_scenario.sh
#
# Parties and their key types (made with `umbra keys generate`): the algorithm provider (Ed25519),
# data provider 1 (ECDSA P-256), data provider 2 (RSA), consumers 1 (ECDSA P-384) and 2 (Ed25519),
# and a stranger (Ed25519) who is in no manifest. The algorithm is a pure-Python least-squares
# linear regression over two CSV datasets (tests/integration/seed/); the manifest is built here
# (hashes from `umbra checksum`, PEM keys embedded with jq). Checks:
#   - the seed run: algorithm, both datasets, both consumers fetch identical results whose
#     slope/intercept equal an independent computation (awk), and the agent reaches Complete;
#   - refusals (exit 1, the agent's reason on stderr, the agent's state unchanged): data before
#     the algorithm, a fetch before the run ends, data signed by a key not in the manifest, a file
#     not in the manifest, a replayed begin (tests/integration/seed/replay.py), a fetch by a
#     non-consumer, --insecure-dev missing;
#   - failing algorithms, each on its own agent: a crash (Failed with the reason, fetch refused
#     with 409 failed), a run past run_timeout_s 2, one that connects to a TCP listener this
#     script opens (the run fails and the listener sees nothing), one that writes 3 MiB with
#     limits.results_mb 1 (Failed: results exceed the cap).
# TEST_BUILD_DIR (default build) names the build directory; TMPDIR (default /tmp) holds the work
# directory; SEED_KEEP=1 keeps it. Exit 0 only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
agent_bin=$build/guest/agent/umbra-agent
seed=$root/tests/integration/seed
python=/usr/bin/python3

for tool in "$umbra" "$agent_bin"; do
    [ -x "$tool" ] || { echo "seed_scenario: $tool is not built" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "seed_scenario: jq is needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/umbra-seed.XXXXXX")
agent_pids=()
listener_pid=
cleanup () {
    for pid in "${agent_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${agent_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$listener_pid" ]; then
        kill -TERM "$listener_pid" 2>/dev/null || true
        wait "$listener_pid" 2>/dev/null || true
    fi
    if [ -n "${SEED_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; exit 1; }

# Two free consecutive ports (participant endpoint, attestation endpoint): prints the first
free_ports () {
    $python - <<'EOF'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1))
    except OSError:
        a.close(); b.close(); continue
    a.close(); b.close(); print(port); break
EOF
}

# ---------------------------------------------------------------- keys, hashes, manifests
mkdir -p "$work/keys"
gen () { "$umbra" keys generate --type "$2" --out "$work/keys/$1" >/dev/null || fail "keys generate $1 ($2)"; }
gen algo ed25519
gen data1 ecdsa
gen data2 rsa
gen consumer1 ecdsa-p384
gen consumer2 ed25519
gen stranger ed25519
for party in algo data1 data2 consumer1 consumer2 stranger; do
    [ -s "$work/keys/$party.key" ] && [ -s "$work/keys/$party.pub" ] || fail "no key pair for $party"
done
grep -q "BEGIN PUBLIC KEY" "$work/keys/data2.pub" || fail "data2.pub is not a PEM public key"
ok "six key pairs generated (Ed25519, ECDSA P-256, RSA, ECDSA P-384, Ed25519, Ed25519)"

checksum () { "$umbra" checksum "$1" || fail "umbra checksum $1"; }
cp "$seed/linreg.py" "$seed/data1.csv" "$seed/data2.csv" "$work/"
algo_hash=$(checksum "$work/linreg.py")
data1_hash=$(checksum "$work/data1.csv")
data2_hash=$(checksum "$work/data2.csv")
[ "$algo_hash" = "$($python -c 'import hashlib,sys; print(hashlib.sha3_256(open(sys.argv[1],"rb").read()).hexdigest())' "$work/linreg.py")" ] \
    || fail "umbra checksum disagrees with Python's SHA3-256"
ok "umbra checksum gives the SHA3-256 of each asset"

# manifest OUT ID ALGO_FILE [TIMEOUT_S] [RESULTS_MB] [ARG] -- with DATASETS=0|2
manifest () {
    local out=$1 id=$2 algo=$3 timeout=${4:-600} results_mb=${5:-100} arg=${6:-}
    local hash; hash=$(checksum "$algo")
    local datasets='[]'
    if [ "${DATASETS:-2}" = 2 ]; then
        datasets=$(jq -n --arg h1 "$data1_hash" --rawfile k1 "$work/keys/data1.pub" \
                          --arg h2 "$data2_hash" --rawfile k2 "$work/keys/data2.pub" \
            '[{hash: $h1, userKey: $k1, filename: "data1.csv"}, {hash: $h2, userKey: $k2, filename: "data2.csv"}]')
    fi
    jq -n --arg id "$id" --arg ah "$hash" --rawfile ak "$work/keys/algo.pub" \
          --rawfile c1 "$work/keys/consumer1.pub" --rawfile c2 "$work/keys/consumer2.pub" \
          --argjson datasets "$datasets" --argjson timeout "$timeout" --argjson results_mb "$results_mb" \
          --arg arg "$arg" \
        '{id: $id, name: "seed \($id)", description: "umbra seed scenario",
          algorithm: {hash: $ah, userKey: $ak, type: "python", args: (if $arg == "" then [] else [$arg] end)},
          datasets: $datasets,
          result_consumers: [{userKey: $c1}, {userKey: $c2}],
          agent_config: {port: "7002", attested_tls: true},
          run_timeout_s: $timeout, limits: {results_mb: $results_mb}}' >"$out"
}

# start_agent NAME MANIFEST: starts umbra-agent; sets $endpoint and remembers the pid
start_agent () {
    local name=$1 manifest_file=$2 port
    port=$(free_ports)
    mkdir -p "$work/$name"
    "$agent_bin" --manifest "$manifest_file" --listen "tcp://127.0.0.1:$port" --attestation none \
        --workdir "$work/$name/workdir" >"$work/$name/agent.out" 2>"$work/$name/agent.err" &
    agent_pids+=($!)
    local pid=$! waited=0
    until grep -q "listening on" "$work/$name/agent.out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$work/$name/agent.err" >&2; fail "umbra-agent $name exited at start"; }
        [ $waited -lt 200 ] || fail "umbra-agent $name did not say it listens within 20 s"
        sleep 0.1; waited=$((waited + 1))
    done
    endpoint=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$work/$name/agent.out" | head -n 1)
    [ -n "$endpoint" ] || fail "cannot read the endpoint of $name from: $(cat "$work/$name/agent.out")"
}

# agent STATUS FIELD: a field of `umbra agent status --json`
status_json () { "$umbra" agent status --agent "$1" --insecure-dev --json 2>/dev/null; }
state_of () { status_json "$1" | jq -r .state; }

# wait_state ENDPOINT STATE...: waits (30 s at most) until the agent is in one of the states
wait_state () {
    local ep=$1; shift
    local waited=0 state
    while true; do
        state=$(state_of "$ep")
        for want in "$@"; do [ "$state" = "$want" ] && return 0; done
        [ $waited -lt 300 ] || fail "the agent stayed in $state, expected $*"
        sleep 0.1; waited=$((waited + 1))
    done
}

# refused WHAT PATTERN CMD...: CMD must exit 1 with PATTERN in its stderr
refused () {
    local what=$1 pattern=$2; shift 2
    local rc=0
    "$@" >"$work/out" 2>"$work/err" || rc=$?
    [ $rc -eq 1 ] || { cat "$work/err" >&2; fail "$what: exit $rc, expected 1"; }
    grep -q -- "$pattern" "$work/err" || { cat "$work/err" >&2; fail "$what: stderr lacks '$pattern'"; }
    ok "$what: refused (exit 1): $(grep -m1 -- "$pattern" "$work/err" | cut -c1-160)"
}

# unchanged ENDPOINT STATE SNAPSHOT: the status still says STATE and equals SNAPSHOT
unchanged () {
    local now; now=$(status_json "$1" | jq -S 'del(.events)')
    [ "$(jq -r .state <<<"$now")" = "$2" ] || fail "the agent's state moved to $(jq -r .state <<<"$now")"
    [ "$now" = "$3" ] || { echo "$now" >&2; fail "the agent's status changed after a refusal"; }
}
snapshot () { status_json "$1" | jq -S 'del(.events)'; }

# ---------------------------------------------------------------- the seed run
manifest "$work/seed.json" seed-linreg "$work/linreg.py"
start_agent seed "$work/seed.json"
main=$endpoint
ok "umbra-agent (standalone, attestation none) listens on $main"

refused "status without --insecure-dev" "without a TEE" "$umbra" agent status --agent "$main"
[ "$(state_of "$main")" = ReceivingAlgorithm ] || fail "a fresh agent is not in ReceivingAlgorithm"
ok "agent status --insecure-dev: ReceivingAlgorithm, computation $(status_json "$main" | jq -r .computation)"

if "$umbra" help 2>/dev/null | grep -q "^  attestation"; then
"$umbra" attestation get --agent "$main" --insecure-dev --json --out "$work/attestation.json" 2>"$work/err" \
    || { cat "$work/err" >&2; fail "attestation get"; }
[ "$(jq -r .platform "$work/attestation.json")" = none ] && [ "$(jq -r .insecure "$work/attestation.json")" = true ] \
    || fail "attestation get --json does not say platform none"
grep -q "WARNING" "$work/err" || fail "no warning about the missing TEE"
ok "attestation get: platform none, insecure, warned on stderr"
refused "attestation get without --insecure-dev" "without a TEE" \
    "$umbra" attestation get --agent "$main" --json
else
    echo "skip - attestation get: \`umbra attestation\` is not built in"
fi

snap=$(snapshot "$main")
refused "data before the algorithm" "wrong_state" \
    "$umbra" data "$work/data1.csv" --key "$work/keys/data1.key" --agent "$main" --insecure-dev
unchanged "$main" ReceivingAlgorithm "$snap"
refused "a fetch before the run" "not_ready" \
    "$umbra" result --key "$work/keys/consumer1.key" --agent "$main" --insecure-dev -o "$work/early"
unchanged "$main" ReceivingAlgorithm "$snap"
[ -z "$(ls -A "$work/early" 2>/dev/null)" ] || fail "a refused fetch left files in the output directory"
refused "the algorithm signed by a stranger" "bad_signature" \
    "$umbra" algo "$work/linreg.py" --key "$work/keys/stranger.key" --agent "$main" --insecure-dev
unchanged "$main" ReceivingAlgorithm "$snap"

"$umbra" algo "$work/linreg.py" --key "$work/keys/algo.key" --agent "$main" --insecure-dev \
    --type python 2>"$work/err" >"$work/out" || { cat "$work/err" >&2; fail "umbra algo"; }
[ "$(state_of "$main")" = ReceivingData ] || fail "after the algorithm the agent is not in ReceivingData"
ok "umbra algo: uploaded; the agent is in ReceivingData"
refused "the algorithm again" "duplicate\|wrong_state" \
    "$umbra" algo "$work/linreg.py" --key "$work/keys/algo.key" --agent "$main" --insecure-dev

snap=$(snapshot "$main")
refused "data signed by a key not in the manifest" "bad_signature" \
    "$umbra" data "$work/data1.csv" --key "$work/keys/stranger.key" --agent "$main" --insecure-dev
unchanged "$main" ReceivingData "$snap"
refused "data signed by the other data provider" "bad_signature" \
    "$umbra" data "$work/data1.csv" --key "$work/keys/data2.key" --agent "$main" --insecure-dev
unchanged "$main" ReceivingData "$snap"
printf 'x,y\n1,1000\n' >"$work/forged.csv"
refused "a file not in the manifest" "unknown_asset" \
    "$umbra" data "$work/forged.csv" --key "$work/keys/data1.key" --agent "$main" --insecure-dev
unchanged "$main" ReceivingData "$snap"
$python "$seed/replay.py" "$main" "$work/keys/data1.key" "$work/data1.csv" >"$work/replay.out" 2>&1 \
    || { cat "$work/replay.out" >&2; fail "the replay client"; }
cat "$work/replay.out"
grep -q "replayed begin was refused: 403 bad_challenge" "$work/replay.out" || fail "the replay was not refused"
ok "a captured, replayed begin is refused (403 bad_challenge)"
unchanged "$main" ReceivingData "$snap"
refused "a fetch while data is missing" "not_ready" \
    "$umbra" result --key "$work/keys/consumer2.key" --agent "$main" --insecure-dev -o "$work/early"
unchanged "$main" ReceivingData "$snap"

"$umbra" data "$work/data1.csv" --key "$work/keys/data1.key" --agent "$main" --insecure-dev >/dev/null 2>"$work/err" \
    || { cat "$work/err" >&2; fail "umbra data data1.csv"; }
ok "umbra data data1.csv (ECDSA P-256): uploaded"
refused "the same dataset again" "duplicate" \
    "$umbra" data "$work/data1.csv" --key "$work/keys/data1.key" --agent "$main" --insecure-dev
"$umbra" data "$work/data2.csv" --key "$work/keys/data2.key" --agent "$main" --insecure-dev >/dev/null 2>"$work/err" \
    || { cat "$work/err" >&2; fail "umbra data data2.csv"; }
ok "umbra data data2.csv (RSA): uploaded"
wait_state "$main" ConsumingResults
ok "the run ended: ConsumingResults"

refused "a fetch by a data provider (not a consumer)" "not_a_consumer" \
    "$umbra" result --key "$work/keys/data1.key" --agent "$main" --insecure-dev -o "$work/nc"
refused "a fetch by a stranger" "not_a_consumer" \
    "$umbra" result --key "$work/keys/stranger.key" --agent "$main" --insecure-dev -o "$work/nc"
[ -z "$(ls -A "$work/nc" 2>/dev/null)" ] || fail "a refused fetch left files"

"$umbra" result --key "$work/keys/consumer1.key" --agent "$main" --insecure-dev -o "$work/r1" >/dev/null 2>"$work/err" \
    || { cat "$work/err" >&2; fail "umbra result (consumer 1)"; }
[ "$(state_of "$main")" = ConsumingResults ] || fail "one consumer of two fetched, yet the state moved on"
ok "consumer 1 (ECDSA P-384) fetched; still ConsumingResults"
refused "a second fetch into the same directory" "exists already" \
    "$umbra" result --key "$work/keys/consumer1.key" --agent "$main" --insecure-dev -o "$work/r1"
"$umbra" result --key "$work/keys/consumer1.key" --agent "$main" --insecure-dev -o "$work/r1" --force \
    >/dev/null 2>"$work/err" || { cat "$work/err" >&2; fail "umbra result --force"; }
ok "a second fetch with --force replaces the files"
"$umbra" result --key "$work/keys/consumer2.key" --agent "$main" --insecure-dev -o "$work/r2" >/dev/null 2>"$work/err" \
    || { cat "$work/err" >&2; fail "umbra result (consumer 2)"; }
wait_state "$main" Complete
ok "consumer 2 (Ed25519) fetched; the agent is Complete"

cmp "$work/r1/model.json" "$work/r2/model.json" || fail "the consumers got different results"
[ "$(cd "$work/r1" && find . -type f | sort)" = "./model.json" ] || fail "unexpected files: $(cd "$work/r1" && find . | tr '\n' ' ')"
ok "both consumers hold the same results/model.json"
# The same fit, computed independently with awk (normal equations)
read -r want_slope want_intercept want_n < <(tail -q -n +2 "$work/data1.csv" "$work/data2.csv" | awk -F, '
    { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
    END { slope = (n * sxy - sx * sy) / (n * sxx - sx * sx); printf "%.12f %.12f %d\n", slope, (sy - slope * sx) / n, n }')
jq -e --argjson s "$want_slope" --argjson i "$want_intercept" --argjson n "$want_n" \
    '((.slope - $s) | fabs) < 1e-9 and ((.intercept - $i) | fabs) < 1e-9 and .n == $n' "$work/r1/model.json" >/dev/null \
    || fail "model.json $(cat "$work/r1/model.json") differs from awk's slope $want_slope intercept $want_intercept n $want_n"
ok "slope $(jq .slope "$work/r1/model.json") intercept $(jq .intercept "$work/r1/model.json") n $want_n match awk's fit"

# ---------------------------------------------------------------- failing algorithms
# run_failing NAME SCRIPT TIMEOUT RESULTS_MB ARG: an agent with no datasets runs SCRIPT; it must fail
run_failing () {
    local name=$1 script=$2 timeout=$3 results_mb=$4 arg=${5:-}
    cp "$seed/$script" "$work/$script"
    DATASETS=0 manifest "$work/$name.json" "seed-$name" "$work/$script" "$timeout" "$results_mb" "$arg"
    start_agent "$name" "$work/$name.json"
    "$umbra" algo "$work/$script" --key "$work/keys/algo.key" --agent "$endpoint" --insecure-dev \
        >/dev/null 2>"$work/err" || { cat "$work/err" >&2; fail "$name: umbra algo"; }
    wait_state "$endpoint" Failed
    reason=$(status_json "$endpoint" | jq -r .reason)
}

run_failing crash crash.py 60 100
grep -q "exit status 3" <<<"$reason" || fail "crash: the reason '$reason' does not give the exit status"
ok "a crashing algorithm: Failed ($reason)"
refused "a fetch after a failed run" "failed" \
    "$umbra" result --key "$work/keys/consumer1.key" --agent "$endpoint" --insecure-dev -o "$work/crash-out"
grep -q "409" "$work/err" || fail "the refusal is not 409"
[ -z "$(ls -A "$work/crash-out" 2>/dev/null)" ] || fail "a failed run's fetch left files"

run_failing timeout sleeper.py 2 100
grep -q "timeout" <<<"$reason" || fail "timeout: the reason '$reason' does not say timeout"
ok "an algorithm past run_timeout_s 2: Failed ($reason)"

# A listener on the host loopback that records what reaches it
lport=$(free_ports)
$python -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(5)
print("listening", flush=True)
while True:
    c, a = s.accept()
    with open(sys.argv[2], "ab") as f:
        f.write(b"connection from %s\n" % str(a).encode()); f.write(c.recv(4096))
    c.close()
' "$lport" "$work/listener.log" >"$work/listener.out" 2>&1 &
listener_pid=$!
waited=0
until grep -q listening "$work/listener.out" 2>/dev/null; do
    [ $waited -lt 100 ] || fail "the listener did not start"; sleep 0.1; waited=$((waited + 1))
done
$python -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()' "$lport"
waited=0
until [ -s "$work/listener.log" ]; do
    [ $waited -lt 100 ] || fail "the listener does not record connections"; sleep 0.1; waited=$((waited + 1))
done
: >"$work/listener.log"
ok "a TCP listener on 127.0.0.1:$lport records what reaches it (checked from the host)"
run_failing network network.py 60 100 "$lport"
ok "an algorithm that connects to 127.0.0.1:$lport: Failed ($reason)"
[ ! -s "$work/listener.log" ] || fail "the listener saw: $(cat "$work/listener.log")"
ok "the listener saw nothing from the sandbox"

run_failing bigresults bigresults.py 60 1
grep -q "results exceed the cap" <<<"$reason" || fail "bigresults: the reason '$reason' does not say the cap"
ok "an algorithm writing 3 MiB with limits.results_mb 1: Failed ($reason)"

echo "seed_scenario: all $checks checks passed"
