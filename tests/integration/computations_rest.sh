#!/usr/bin/env bash
# computations_rest.sh - the computations service through REST (curl against a real `umbra up`):
# a workspace with an owner who also provides the algorithm and consumes the result, two data
# providers and a second consumer (four users holding the four roles), a viewer, and a user of
# another workspace. Checks:
#   - definitions: create (participants and roles derived, users named by username or id),
#     update with the version, bad input (bad hash, a non-member, a user named twice, a huge
#     description, a taken name, a stale version) answered 4xx with nothing written;
#   - isolation: the other workspace's user gets 404 on every computation route, the viewer may
#     read but not change, a participant who is not the owner cannot edit;
#   - keys (each participant their own, every key type) and asset hashes (by their provider or the
#     owner); the dry run lists what is missing until nothing is; the manifest;
#   - the manifest runs: a standalone umbra-agent takes it, the participants upload with the
#     real CLI and the keys they registered, and both consumers get the same result;
#   - a run through the platform: the owner starts it, backends makes a CVM on a process host
#     (the agent behind the bridge, attestation none on an insecure_dev host), the participants
#     upload through the run's endpoints with the real CLI, both consumers fetch the result, the
#     run ends Completed with its events in order and its CVM destroyed; a second run while one is
#     live is 409, stop on a finished run is 409, a stopped run is Cancelled and its CVM goes;
#   - the audit trail: one record per change, `umbra audit verify` accepts it, and refuses it once
#     a record is edited directly in the database (and with a record removed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
agent_bin=$build/guest/agent/umbra-agent
python=/usr/bin/python3
seed=$root/tests/integration/seed
work=$(mktemp -d /tmp/umbra-cmp.XXXXXX)
pid=
agent_pid=
cleanup () {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [ -n "${CMP_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; tail -n 30 "$work/umbra.log" >&2 || true; exit 1; }

read -r gw ap aq cp cq ch bp bq mp mq lp lq < <($python -c '
import socket
held = [socket.socket() for _ in range(12)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
base=http://127.0.0.1:$gw
export UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$ap UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$aq \
       UMBRA_CERTS_ENDPOINT=tcp://127.0.0.1:$cp UMBRA_CERTS_PUB_ENDPOINT=tcp://127.0.0.1:$cq \
       UMBRA_CERTS_HTTP_LISTEN=127.0.0.1:$ch \
       UMBRA_BACKENDS_ENDPOINT=tcp://127.0.0.1:$bp UMBRA_BACKENDS_PUB_ENDPOINT=tcp://127.0.0.1:$bq \
       UMBRA_COMPUTATIONS_ENDPOINT=tcp://127.0.0.1:$mp UMBRA_COMPUTATIONS_PUB_ENDPOINT=tcp://127.0.0.1:$mq \
       UMBRA_BILLING_ENDPOINT=tcp://127.0.0.1:$lp UMBRA_BILLING_PUB_ENDPOINT=tcp://127.0.0.1:$lq
# Billing never refuses what this test is about (billing_rest.sh tests it)
export UMBRA_BILLING_DEFAULT_PLAN=enterprise UMBRA_BILLING_WELCOME_CREDIT=1000000000000
UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=root-password-0123 \
    "$umbra" up --state "$work/state" --listen 127.0.0.1:$gw >"$work/umbra.log" 2>&1 &
pid=$!
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null "$base/health" \
    || fail "the platform did not come up"

# req METHOD PATH TOKEN [JSON]: sets status and body
req () {
    local method=$1 path=$2 token=$3 data=${4:-}
    local args=(-s -o "$work/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    status=$(curl "${args[@]}" "$base$path")
    body=$(cat "$work/body")
}
expect () { [ "$status" = "$1" ] || fail "$2: expected $1, got $status: $body"; }

# Users and workspaces: lab (alice admin; bob, carol, dave members; victor viewer), other (erin)
declare -A token id
for user in alice bob carol dave victor erin; do
    curl -s -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$user-password-123\"}" "$base/users"
    token[$user]=$(curl -s -H 'Content-Type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$user-password-123\"}" "$base/users/tokens" | jq -r .access_token)
    req GET /users/me "${token[$user]}"
    id[$user]=$(jq -r .id <<<"$body")
done
req POST /workspaces "${token[alice]}" '{"name":"lab"}';   expect 201 "workspace lab"
req POST /workspaces "${token[erin]}" '{"name":"other"}';  expect 201 "workspace other"
for pair in bob:member carol:member dave:member victor:viewer; do
    user=${pair%%:*}; role=${pair#*:}
    req POST /workspaces/lab/invitations "${token[alice]}" "{\"username\":\"$user\",\"role\":\"$role\"}"
    expect 201 "invite $user"
    invitation=$(jq -r .id <<<"$body")
    req POST "/invitations/$invitation/accept" "${token[$user]}"; expect 200 "$user accepts"
done
ok "six users; lab has alice (admin), bob, carol, dave (members), victor (viewer); erin is elsewhere"

# ---------------------------------------------------------------- definitions
definition=$(jq -n --arg carol "${id[carol]}" '{name: "regression", description: "two regions",
    algorithm: {provider: "alice", type: "python"},
    datasets: [{provider: "bob", filename: "data1.csv"}, {provider: $carol, filename: "data2.csv"}],
    consumers: ["alice", "dave"], backend: {tee: "none", vcpus: 1, memory_mb: 512},
    run_timeout_s: 120, limits: {memory_mb: 256}}')
req POST /workspaces/lab/computations "${token[alice]}" "$definition"
expect 201 "create"
cmp=$(jq -r .id <<<"$body")
[ "$(jq -r .owner <<<"$body")" = "${id[alice]}" ] || fail "owner: $body"
[ "$(jq -r '.participants | length' <<<"$body")" = 4 ] || fail "participants: $body"
[ "$(jq -r --arg a "${id[alice]}" '.participants[] | select(.user == $a) | .roles | join(",")' <<<"$body")" \
  = "owner,algorithm_provider,result_consumer" ] || fail "alice's roles: $body"
[ "$(jq -r '.consumers[1]' <<<"$body")" = "${id[dave]}" ] || fail "consumers are ids: $body"
ok "created $cmp: four participants, roles from the definition, users stored by id"

bad () {  # JSON CODE PATTERN WHAT
    req POST /workspaces/lab/computations "${token[alice]}" "$1"
    expect "$2" "$4"
    grep -q -- "$3" <<<"$body" || fail "$4: the reason lacks '$3': $body"
}
bad "$(jq '.name = "x" | .algorithm.hash = "ABC"' <<<"$definition")" 422 "algorithm.hash" "a bad hash"
bad "$(jq '.name = "x" | .consumers = ["alice", "mallory"]' <<<"$definition")" 422 "'mallory' is not a member" "a non-member"
bad "$(jq --arg a "${id[alice]}" '.name = "x" | .consumers = ["alice", $a]' <<<"$definition")" 422 "named twice" "a user named twice"
bad "$(jq '.name = "x" | .description = ("d" * 5000)' <<<"$definition")" 422 "description" "a huge description"
bad "$(jq '.name = "x" | .datasets[0].filename = "../etc/passwd"' <<<"$definition")" 422 "filename" "an unsafe filename"
bad "$(jq '.name = "x" | .consumers = []' <<<"$definition")" 422 "consumer" "no consumer"
bad "$definition" 409 "exists" "a taken name"
bad '{"name": "x"}' 400 "algorithm" "a missing field"
req GET /workspaces/lab/computations "${token[alice]}"
[ "$(jq -r '.items | length' <<<"$body")" = 1 ] || fail "something was half-written: $body"
ok "bad definitions get 4xx with the field named, and nothing is written"

req PATCH "/workspaces/lab/computations/$cmp" "${token[alice]}" '{"version": 7, "run_timeout_s": 60}'
expect 409 "a stale version"
req PATCH "/workspaces/lab/computations/$cmp" "${token[alice]}" '{"version": 1, "description": "north and south"}'
expect 200 "update"
[ "$(jq -r .version <<<"$body")" = 2 ] && [ "$(jq -r .description <<<"$body")" = "north and south" ] \
    || fail "update: $body"
ok "update with the current version; a stale one is 409"

# ---------------------------------------------------------------- isolation
for route in "GET /workspaces/lab/computations/$cmp" "PATCH /workspaces/lab/computations/$cmp" \
             "DELETE /workspaces/lab/computations/$cmp" "GET /workspaces/lab/computations/$cmp/check" \
             "GET /workspaces/lab/computations/$cmp/manifest" "PUT /workspaces/lab/computations/$cmp/participants/me/key" \
             "PUT /workspaces/lab/computations/$cmp/assets/algorithm" "GET /workspaces/lab/computations" \
             "GET /workspaces/lab/audit" "POST /workspaces/lab/computations"; do
    req ${route% *} "${route#* }" "${token[erin]}" '{}'
    expect 404 "erin: $route"
done
req GET "/workspaces/other/computations/$cmp" "${token[erin]}"; expect 404 "erin, through her own workspace"
req GET "/workspaces/lab/computations/$cmp" "${token[victor]}"; expect 200 "the viewer reads"
req PATCH "/workspaces/lab/computations/$cmp" "${token[victor]}" '{"run_timeout_s": 60}'; expect 403 "the viewer edits"
req POST /workspaces/lab/computations "${token[victor]}" "$(jq '.name = "v"' <<<"$definition")"; expect 403 "the viewer creates"
req PATCH "/workspaces/lab/computations/$cmp" "${token[bob]}" '{"run_timeout_s": 60}'; expect 403 "a participant who is not the owner edits"
req DELETE "/workspaces/lab/computations/$cmp" "${token[bob]}"; expect 403 "a participant who is not the owner deletes"
ok "another workspace's user gets 404 on every route; the viewer reads only; only the owner edits"

# ---------------------------------------------------------------- keys and assets
req GET "/workspaces/lab/computations/$cmp/check" "${token[victor]}"; expect 200 "check"
[ "$(jq -r .ready <<<"$body")" = false ] && [ "$(jq -r '.missing | length' <<<"$body")" = 7 ] \
    || fail "check before: $body"
req GET "/workspaces/lab/computations/$cmp/manifest" "${token[alice]}"; expect 409 "a manifest before it is ready"
grep -q "algorithm.hash" <<<"$body" || fail "not_ready lacks what is missing: $body"
mkdir -p "$work/keys"
declare -A type=([alice]=ed25519 [bob]=ecdsa [carol]=rsa [dave]=ecdsa-p384 [victor]=ed25519)
for user in alice bob carol dave victor; do
    "$umbra" keys generate --type "${type[$user]}" --out "$work/keys/$user" >/dev/null
done
key_json () { jq -n --rawfile k "$work/keys/$1.pub" '{key: $k}'; }
req PUT "/workspaces/lab/computations/$cmp/participants/me/key" "${token[victor]}" "$(key_json victor)"
expect 403 "a key from a non-participant"
req PUT "/workspaces/lab/computations/$cmp/participants/me/key" "${token[bob]}" '{"key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}'
expect 422 "a key that is not one"
for user in alice bob carol dave; do
    req PUT "/workspaces/lab/computations/$cmp/participants/me/key" "${token[$user]}" "$(key_json $user)"
    expect 200 "$user's key"
done
cp "$seed/linreg.py" "$seed/data1.csv" "$seed/data2.csv" "$work/"
hash_of () { "$umbra" checksum "$work/$1"; }
req PUT "/workspaces/lab/computations/$cmp/assets/data1.csv" "${token[carol]}" "{\"hash\":\"$(hash_of data1.csv)\"}"
expect 403 "a hash set by another provider"
req PUT "/workspaces/lab/computations/$cmp/assets/nothing.csv" "${token[alice]}" "{\"hash\":\"$(hash_of data1.csv)\"}"
expect 404 "a hash of no asset"
req PUT "/workspaces/lab/computations/$cmp/assets/algorithm" "${token[alice]}" '{"hash":"xyz"}'
expect 422 "a malformed hash"
req PUT "/workspaces/lab/computations/$cmp/assets/algorithm" "${token[alice]}" "{\"hash\":\"$(hash_of linreg.py)\"}"
expect 200 "the algorithm's hash by its provider"
req PUT "/workspaces/lab/computations/$cmp/assets/data1.csv" "${token[bob]}" "{\"hash\":\"$(hash_of data1.csv)\"}"
expect 200 "data1's hash by its provider"
req PUT "/workspaces/lab/computations/$cmp/assets/data2.csv" "${token[alice]}" "{\"hash\":\"$(hash_of data2.csv)\"}"
expect 200 "data2's hash by the owner"
req GET "/workspaces/lab/computations/$cmp/check" "${token[dave]}"
[ "$(jq -r .ready <<<"$body")" = true ] || fail "check after: $body"
req GET "/workspaces/lab/computations/$cmp/manifest" "${token[dave]}"; expect 200 "the manifest"
jq -r .manifest <<<"$body" >"$work/manifest.json"
[ "$(jq -r .id "$work/manifest.json")" = "$cmp" ] && [ "$(jq -r '.datasets | length' "$work/manifest.json")" = 2 ] \
    || fail "manifest: $(cat "$work/manifest.json")"
ok "keys by their owners (four types), hashes by providers or the owner; ready; the manifest"

# ---------------------------------------------------------------- the manifest runs
# The agent binds ports the system picks and says which
"$agent_bin" --manifest "$work/manifest.json" --listen 'tcp://127.0.0.1:*' \
    --attest-listen 'tcp://127.0.0.1:*' --attestation none --workdir "$work/agent" >"$work/agent.log" 2>&1 &
agent_pid=$!
waited=0
until grep -q "^umbra-agent: listening on" "$work/agent.log"; do
    kill -0 "$agent_pid" 2>/dev/null || fail "umbra-agent refused the manifest: $(cat "$work/agent.log")"
    [ $waited -lt 200 ] || fail "umbra-agent did not start"
    sleep 0.1; waited=$((waited + 1))
done
read -r agent_ep agent_attest < <(sed -n 's/^umbra-agent: listening on \([^ ]*\) attestation \([^ ]*\) .*/\1 \2/p' "$work/agent.log")
participant () { "$umbra" "$@" --agent "$agent_ep" --attest-endpoint "$agent_attest" --insecure-dev \
                 >>"$work/cli.log" 2>&1 || { cat "$work/cli.log" >&2; fail "umbra $1"; }; }
participant algo "$work/linreg.py" --key "$work/keys/alice.key"
participant data "$work/data1.csv" --key "$work/keys/bob.key"
participant data "$work/data2.csv" --key "$work/keys/carol.key"
for consumer in alice dave; do
    waited=0
    until "$umbra" result --key "$work/keys/$consumer.key" --agent "$agent_ep" \
            --attest-endpoint "$agent_attest" --insecure-dev \
            -o "$work/result-$consumer" >>"$work/cli.log" 2>&1; do
        [ $waited -lt 120 ] || { cat "$work/cli.log" >&2; fail "umbra result for $consumer"; }
        sleep 0.5; waited=$((waited + 1))
    done
done
cmp -s "$work/result-alice/model.json" "$work/result-dave/model.json" || fail "the consumers' results differ"
[ "$(jq -r .n "$work/result-dave/model.json")" -gt 0 ] || fail "result: $(cat "$work/result-dave/model.json")"
ok "the manifest runs in umbra-agent; both consumers get the same result: $(cat "$work/result-dave/model.json")"

kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=

# ---------------------------------------------------------------- a run through the platform
req POST /workspaces/lab/backends "${token[alice]}" '{"name": "dev", "uri": "process:///", "insecure_dev": true}'
expect 201 "a process host"
req POST "/workspaces/lab/computations/$cmp/runs" "${token[bob]}"; expect 403 "a run started by a participant who is not the owner"
req POST "/workspaces/lab/computations/$cmp/runs" "${token[alice]}"; expect 201 "start a run"
run=$(jq -r .id <<<"$body")
[ "$(jq -r .state <<<"$body")" = Provisioning ] || fail "the run starts Provisioning: $body"
req POST "/workspaces/lab/computations/$cmp/runs" "${token[alice]}"; expect 409 "a second run while one is live"
# A viewer follows the run live: Server-Sent Events until the run is final
curl -sN -H "Authorization: Bearer ${token[victor]}" \
    "$base/workspaces/lab/computations/$cmp/runs/$run/events?follow=1" >"$work/sse.txt" &
sse_pid=$!
# wait_run STATE: until the run is in STATE (or a final state, which fails unless it is STATE)
wait_run () {
    local waited=0 state
    while true; do
        req GET "/workspaces/lab/computations/$cmp/runs/$run" "${token[dave]}"
        state=$(jq -r .state <<<"$body")
        [ "$state" = "$1" ] && [ "$1" != AwaitingAssets -o "$(jq -r .agent_endpoint <<<"$body")" != null ] && return 0
        case $state in Completed|Failed|Cancelled) fail "the run is $state, not $1: $body";; esac
        [ $waited -lt 300 ] || fail "the run stayed $state, expected $1: $body"
        sleep 0.2; waited=$((waited + 1))
    done
}
wait_run AwaitingAssets
agent=$(jq -r .agent_endpoint <<<"$body"); attest=$(jq -r .attest_endpoint <<<"$body"); run_cvm=$(jq -r .cvm <<<"$body")
ok "run $run: the CVM $run_cvm is up; participants reach the agent at $agent"
through () { "$umbra" "$@" --agent "$agent" --attest-endpoint "$attest" --insecure-dev >>"$work/run.log" 2>&1 \
             || { cat "$work/run.log" >&2; fail "umbra $1 through the run"; }; }
through algo "$work/linreg.py" --key "$work/keys/alice.key"
through data "$work/data1.csv" --key "$work/keys/bob.key"
through data "$work/data2.csv" --key "$work/keys/carol.key"
wait_run ResultsReady
# A data provider who is not a consumer gets no result (the agent checks the consumers' keys)
if "$umbra" result --key "$work/keys/bob.key" --agent "$agent" --attest-endpoint "$attest" --insecure-dev \
        -o "$work/run-bob" >"$work/bob-result.log" 2>&1; then
    fail "a data provider who is not a consumer fetched the result"
fi
ok "a data provider who is not a consumer is refused the result: $(tail -n 1 "$work/bob-result.log")"
for consumer in alice dave; do
    through result --key "$work/keys/$consumer.key" -o "$work/run-$consumer"
    cmp -s "$work/run-$consumer/model.json" "$work/result-dave/model.json" || fail "$consumer's result differs"
done
wait_run Completed
ok "the participants uploaded through the run; both consumers got the result; the run is Completed"
req GET "/workspaces/lab/computations/$cmp/runs/$run/events?after=0&max=1000" "${token[victor]}"; expect 200 "the run's events"
[ "$(jq -r '[.events[].seq] == [range(1; (.events | length) + 1)]' <<<"$body")" = true ] || fail "events out of order: $body"
states=$(jq -r '[.events[] | select(.source == "computations" and .type == "state") | .state] | join(" ")' <<<"$body")
[ "$states" = "Pending Provisioning AwaitingAssets Running ResultsReady Completed" ] \
    || [ "$states" = "Pending Provisioning AwaitingAssets ResultsReady Completed" ] || fail "the run's states: $states"
agent_states=$(jq -r '[.events[] | select(.source == "agent" and .type == "state") | .state] | join(" ")' <<<"$body")
grep -q "Complete" <<<"$agent_states" || fail "the agent's events are missing: $agent_states"
ok "the run's events, in order: $states (agent: $agent_states)"
waited=0
while kill -0 "$sse_pid" 2>/dev/null; do
    [ $waited -lt 300 ] || fail "the event stream did not end with the run"
    sleep 0.1; waited=$((waited + 1))
done
grep -q '^event: end$' "$work/sse.txt" && grep -q '^data: {"state":"Completed"}$' "$work/sse.txt" \
    || fail "the stream does not end with the run: $(tail -n 5 "$work/sse.txt")"
sse_states=$(grep '^data: ' "$work/sse.txt" | sed 's/^data: //' | jq -r 'select(.source == "computations" and .type == "state") | .state' | tr '\n' ' ')
[ "$sse_states" = "$states " ] || fail "the stream's states ($sse_states) are not the run's ($states)"
[ "$(grep -c '^id: ' "$work/sse.txt")" = "$(jq -r '.events | length' <<<"$body")" ] || fail "the stream lost or repeated events"
ok "the run followed live (follow=1, Server-Sent Events): every event once, then end"
req GET "/workspaces/lab/computations/$cmp/runs/$run/logs" "${token[victor]}"; expect 200 "the run's log"
[ "$(jq -r '[.events[].type] | unique | join(",")' <<<"$body")" = log ] && grep -q "fitted 15 points" <<<"$body" \
    || fail "the run's log: $body"
ok "the run's log holds the algorithm's output: $(jq -r '[.events[].message | select(test("fitted"))][0]' <<<"$body")"
req GET "/workspaces/lab/computations/$cmp/runs/run_0000000000000000" "${token[alice]}"; expect 404 "an unknown run"
req GET "/workspaces/lab/computations/cmp_0000000000000000" "${token[alice]}"; expect 404 "an unknown computation"
waited=0
until [ "$(curl -s -H "Authorization: Bearer ${token[alice]}" "$base/workspaces/lab/cvms/$run_cvm" | jq -r .state)" = Destroyed ]; do
    [ $waited -lt 100 ] || fail "the run's CVM was not destroyed"
    sleep 0.1; waited=$((waited + 1))
done
req POST "/workspaces/lab/computations/$cmp/runs/$run/stop" "${token[alice]}"; expect 409 "stop a finished run"
ok "the CVM is destroyed with the run; stopping a finished run is 409"
req POST "/workspaces/lab/computations/$cmp/runs" "${token[alice]}"; expect 201 "a second run"
run=$(jq -r .id <<<"$body")
wait_run AwaitingAssets
run_cvm=$(jq -r .cvm <<<"$body")
req POST "/workspaces/lab/computations/$cmp/runs/$run/stop" "${token[alice]}"; expect 200 "stop"
[ "$(jq -r .state <<<"$body")" = Cancelled ] || fail "stop: $body"
waited=0
until [ "$(curl -s -H "Authorization: Bearer ${token[alice]}" "$base/workspaces/lab/cvms/$run_cvm" | jq -r .state)" = Destroyed ]; do
    [ $waited -lt 100 ] || fail "the stopped run's CVM was not destroyed"
    sleep 0.1; waited=$((waited + 1))
done
ok "a stopped run is Cancelled and its CVM destroyed"

# ---------------------------------------------------------------- the audit trail
req GET /workspaces/lab/audit "${token[victor]}"; expect 200 "audit"
actions=$(jq -r '[.records[].action] | join(" ")' <<<"$body")
[ "$actions" = "create update keys.set keys.set keys.set keys.set assets.set assets.set assets.set runs.start runs.start runs.stop" ] \
    || fail "the audit trail says: $actions"
ok "the audit trail has a record for every change: $actions"
verify () { "$umbra" audit verify --workspace lab --url "$base" --token "${token[victor]}" \
                --anchor-dir "$work/anchors" >"$work/verify.out" 2>&1; }
verify || fail "umbra audit verify: $(cat "$work/verify.out")"
ok "umbra audit verify: $(cat "$work/verify.out")"
db=$work/state/computations/computations.db
$python - "$db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE audit SET detail = replace(detail, 'data1.csv', 'data9.csv') WHERE seq = 8")
db.commit()
EOF
rc=0; verify || rc=$?
[ $rc = 1 ] && grep -q "record 8" "$work/verify.out" || fail "an edited record passed (exit $rc): $(cat "$work/verify.out")"
ok "a record edited in the database is caught: $(cat "$work/verify.out")"
$python - "$db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE audit SET detail = replace(detail, 'data9.csv', 'data1.csv') WHERE seq = 8")
db.execute("DELETE FROM audit WHERE seq = 12")
db.commit()
EOF
rc=0; verify || rc=$?
[ $rc = 1 ] || fail "a removed last record passed: $(cat "$work/verify.out")"
ok "a removed record is caught against the head seen before: $(cat "$work/verify.out")"

# Statistics of today: one computation, two runs (one Completed, one Cancelled)
req GET "/workspaces/lab/computations/stats?days=1" "${token[victor]}"; expect 200 "stats"
[ "$(jq -c '.days[-1] | [.computations_created, .runs_started, .runs_completed, .runs_cancelled]' <<<"$body")" = "[1,2,1,1]" ] \
    || fail "stats: $body"
today=$(jq -c '.days[-1]' <<<"$body")
req GET "/workspaces/lab/computations/stats?days=0" "${token[victor]}"; expect 422 "stats for no day"
ok "per-day statistics: $today"

# Deleting keeps the trail
req DELETE "/workspaces/lab/computations/$cmp" "${token[alice]}"; expect 200 "delete"
req GET "/workspaces/lab/computations/$cmp" "${token[alice]}"; expect 404 "gone"
echo "computations_rest: $checks checks passed"
