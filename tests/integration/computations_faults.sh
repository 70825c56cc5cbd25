#!/usr/bin/env bash
# computations_faults.sh - runs of computations when things go wrong, with umbra-auth, umbra-certs,
# umbra-backends, umbra-computations and umbra-gateway as separate processes and a process host:
#   - umbra-computations is killed (SIGKILL) while a run waits for its data and started again:
#     the run is resumed, completes, and its events hold every agent state exactly once, in order;
#   - the algorithm crashes: the run is Failed with the agent's reason and its CVM destroyed;
#   - the CVM never becomes ready (an agent that never listens): the run is Failed after the
#     provision timeout and its CVM destroyed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
python=/usr/bin/python3
seed=$root/tests/integration/seed
work=$(mktemp -d /tmp/umbra-cmpf.XXXXXX)
declare -A pid
cleanup () {
    for name in "${!pid[@]}"; do kill "${pid[$name]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${CMP_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; for log in "$work"/*.log; do echo "--- $log" >&2; tail -n 15 "$log" >&2; done; exit 1; }

read -r gw ap aq cp cq ch bp bq mp mq lp lq < <($python -c '
import socket
held = [socket.socket() for _ in range(12)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
base=http://127.0.0.1:$gw
cat >"$work/umbra.conf" <<CONF
state_dir = $work/state
[auth]
endpoint = tcp://127.0.0.1:$ap
pub_endpoint = tcp://127.0.0.1:$aq
[certs]
endpoint = tcp://127.0.0.1:$cp
pub_endpoint = tcp://127.0.0.1:$cq
http_listen = 127.0.0.1:$ch
[backends]
endpoint = tcp://127.0.0.1:$bp
pub_endpoint = tcp://127.0.0.1:$bq
certify_agents = false
agent_path = $build/guest/agent/umbra-agent
[computations]
endpoint = tcp://127.0.0.1:$mp
pub_endpoint = tcp://127.0.0.1:$mq
# billing runs, and never refuses what this test is about (billing_rest.sh tests it)
[billing]
endpoint = tcp://127.0.0.1:$lp
pub_endpoint = tcp://127.0.0.1:$lq
default_plan = enterprise
welcome_credit = 1000000000000
[gateway]
listen = 127.0.0.1:$gw
CONF
# start NAME [VAR=VALUE...]: runs umbra-NAME with the settings file (and the environment given)
start () {
    local name=$1; shift
    env "$@" "$build/services/$name/umbra-$name" --config "$work/umbra.conf" >>"$work/$name.log" 2>&1 &
    pid[$name]=$!
}
start auth; start billing; start certs; start backends; start computations; start gateway
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null "$base/health" \
    || fail "the platform did not come up"

req () {
    local method=$1 path=$2 token=$3 data=${4:-}
    local args=(-s -o "$work/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    status=$(curl "${args[@]}" "$base$path")
    body=$(cat "$work/body")
}
expect () { [ "$status" = "$1" ] || fail "$2: expected $1, got $status: $body"; }
declare -A token
for user in alice bob; do
    curl -s -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$user-password-123\"}" "$base/users"
    token[$user]=$(curl -s -H 'Content-Type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$user-password-123\"}" "$base/users/tokens" | jq -r .access_token)
    "$umbra" keys generate --type ed25519 --out "$work/$user" >/dev/null
done
req POST /workspaces "${token[alice]}" '{"name":"lab"}'; expect 201 "workspace"
req POST /workspaces/lab/invitations "${token[alice]}" '{"username":"bob","role":"member"}'; expect 201 "invite"
req POST "/invitations/$(jq -r .id <<<"$body")/accept" "${token[bob]}"; expect 200 "accept"
req POST /workspaces/lab/backends "${token[alice]}" '{"name":"dev","uri":"process:///","insecure_dev":true}'
expect 201 "a process host"
cp "$seed/linreg.py" "$seed/data1.csv" "$seed/crash.py" "$work/"

# define NAME ALGORITHM [DATASET]: a ready computation; prints its id
define () {
    local datasets='[]'
    [ -n "${3:-}" ] && datasets="[{\"provider\": \"bob\", \"filename\": \"$3\"}]"
    req POST /workspaces/lab/computations "${token[alice]}" "{\"name\": \"$1\", \"algorithm\":
        {\"provider\": \"alice\"}, \"datasets\": $datasets, \"consumers\": [\"alice\"], \"run_timeout_s\": 60}"
    expect 201 "define $1"
    local cmp; cmp=$(jq -r .id <<<"$body")
    for user in alice bob; do
        [ $user = bob ] && [ -z "${3:-}" ] && continue
        req PUT "/workspaces/lab/computations/$cmp/participants/me/key" "${token[$user]}" \
            "$(jq -n --rawfile k "$work/$user.pub" '{key: $k}')"
        expect 200 "$user's key"
    done
    req PUT "/workspaces/lab/computations/$cmp/assets/algorithm" "${token[alice]}" "{\"hash\":\"$("$umbra" checksum "$work/$2")\"}"
    expect 200 "the algorithm's hash"
    if [ -n "${3:-}" ]; then
        req PUT "/workspaces/lab/computations/$cmp/assets/$3" "${token[bob]}" "{\"hash\":\"$("$umbra" checksum "$work/$3")\"}"
        expect 200 "the dataset's hash"
    fi
    echo "$cmp"
}
# wait_run CMP RUN STATE: until the run is in STATE; a different final state fails
wait_run () {
    local waited=0 state
    while true; do
        req GET "/workspaces/lab/computations/$1/runs/$2" "${token[alice]}"
        state=$(jq -r .state <<<"$body" 2>/dev/null || echo unknown)
        if [ "$state" = "$3" ]; then
            [ "$3" != AwaitingAssets ] || [ "$(jq -r .agent_endpoint <<<"$body")" != null ] && return 0
        fi
        case $state in Completed|Failed|Cancelled) [ "$state" = "$3" ] || fail "the run is $state, not $3: $body";; esac
        [ $waited -lt 300 ] || fail "the run stayed $state, expected $3: $body"
        sleep 0.2; waited=$((waited + 1))
    done
}
# cvm_gone CVM: until backends says the CVM is Destroyed
cvm_gone () {
    local waited=0
    until [ "$(curl -s -H "Authorization: Bearer ${token[alice]}" "$base/workspaces/lab/cvms/$1" | jq -r .state)" = Destroyed ]; do
        [ $waited -lt 100 ] || fail "the CVM $1 was not destroyed"
        sleep 0.1; waited=$((waited + 1))
    done
}
through () { "$umbra" "$@" --agent "$agent" --attest-endpoint "$attest" --insecure-dev >>"$work/cli.log" 2>&1 \
             || fail "umbra $1 through the run"; }

# ---------------------------------------------------------------- the service dies mid-run
cmp=$(define regression linreg.py data1.csv)
req POST "/workspaces/lab/computations/$cmp/runs" "${token[alice]}"; expect 201 "start"
run=$(jq -r .id <<<"$body")
wait_run "$cmp" "$run" AwaitingAssets
agent=$(jq -r .agent_endpoint <<<"$body"); attest=$(jq -r .attest_endpoint <<<"$body")
through algo "$work/linreg.py" --key "$work/alice.key"
kill -KILL "${pid[computations]}"; wait "${pid[computations]}" 2>/dev/null || true
through data "$work/data1.csv" --key "$work/bob.key"
start computations
wait_run "$cmp" "$run" ResultsReady
through result --key "$work/alice.key" -o "$work/result"
wait_run "$cmp" "$run" Completed
req GET "/workspaces/lab/computations/$cmp/runs/$run/events?after=0&max=1000" "${token[alice]}"; expect 200 "events"
[ "$(jq -r '[.events[].seq] == [range(1; (.events | length) + 1)]' <<<"$body")" = true ] || fail "events out of order: $body"
agent_states=$(jq -r '[.events[] | select(.source == "agent" and .type == "state") | .state] | join(" ")' <<<"$body")
[ "$agent_states" = "Idle ReceivingManifest ReceivingAlgorithm ReceivingData Running ConsumingResults Complete" ] \
    || fail "after the restart the agent's states are: $agent_states"
grep -q "resumed in AwaitingAssets" "$work/computations.log" || fail "the run was not resumed"
ok "umbra-computations killed mid-run and restarted: the run resumed and completed; agent states once each: $agent_states"
cvm_gone "$(jq -r .cvm <<<"$(curl -s -H "Authorization: Bearer ${token[alice]}" "$base/workspaces/lab/computations/$cmp/runs/$run")")"

# ---------------------------------------------------------------- the algorithm crashes
crash=$(define crash crash.py)
req POST "/workspaces/lab/computations/$crash/runs" "${token[alice]}"; expect 201 "start the crash"
run=$(jq -r .id <<<"$body")
wait_run "$crash" "$run" AwaitingAssets
agent=$(jq -r .agent_endpoint <<<"$body"); attest=$(jq -r .attest_endpoint <<<"$body"); cvm=$(jq -r .cvm <<<"$body")
through algo "$work/crash.py" --key "$work/alice.key"
wait_run "$crash" "$run" Failed
reason=$(jq -r .reason <<<"$body")
grep -q "3" <<<"$reason" || fail "the reason does not say how the algorithm ended: $reason"
cvm_gone "$cvm"
ok "the algorithm crashed: the run is Failed ($reason) and its CVM destroyed"

# ---------------------------------------------------------------- the CVM never becomes ready
printf '#!/bin/sh\nexec sleep 600\n' >"$work/silent-agent"
chmod +x "$work/silent-agent"
for name in backends computations; do kill -TERM "${pid[$name]}"; wait "${pid[$name]}" 2>/dev/null || true; done
start backends UMBRA_BACKENDS_AGENT_PATH="$work/silent-agent"
start computations UMBRA_COMPUTATIONS_PROVISION_TIMEOUT_S=3
waited=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ]; do
    [ $waited -lt 100 ] || fail "the services did not come back"
    sleep 0.1; waited=$((waited + 1))
done
req POST "/workspaces/lab/computations/$cmp/runs" "${token[alice]}"; expect 201 "start with a silent agent"
run=$(jq -r .id <<<"$body")
wait_run "$cmp" "$run" Failed
[ "$(jq -r .reason <<<"$body")" = "the CVM was not ready in time (provision timeout)" ] || fail "reason: $body"
cvm=$(jq -r .cvm <<<"$body")
[ "$cvm" != null ] || fail "the run had no CVM: $body"
cvm_gone "$cvm"
ok "a CVM that never becomes ready: the run is Failed after the provision timeout and the CVM destroyed"
echo "computations_faults: $checks checks passed"
