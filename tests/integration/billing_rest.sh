#!/usr/bin/env bash
# billing_rest.sh - billing through REST, with every service a process of its own (curl against
# umbra-gateway, umbra-auth, umbra-billing, umbra-certs, umbra-backends, umbra-computations):
#   - each limit of a plan refuses the action that would pass it, through the service that owns
#     the action, with the limit named: members (auth), computations and runs per month
#     (computations), concurrent CVMs and vCPU-hours (backends); no credit refuses runs and CVMs;
#   - a race: many run starts at once against credit for three never overspend;
#   - CVMs are metered and charged from backends' usage records;
#   - umbra-billing killed with SIGKILL while runs are settled, and started again: every run is
#     settled exactly once, and the ledger adds up;
#   - statements (JSON and CSV), the ledger, administrators' routes, bad input with nothing written.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${TEST_BUILD_DIR:-$root/build}
umbra=$build/cli/umbra
python=/usr/bin/python3
dir=$(mktemp -d /tmp/umbra-billing.XXXXXX)
declare -A pid
cleanup () {
    for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${BILLING_KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; tail -n 20 "$dir"/*.log >&2 || true; exit 1; }

read -r gw ap aq cp cq ch bp bq mp mq lp lq < <($python -c '
import socket
held = [socket.socket() for _ in range(12)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
# Plans of small limits, and prices of 1 µcr per vCPU-second, so amounts are easy to follow
cat >"$dir/plans.json" <<'JSON'
{ "default_plan": "starter",
  "plans": {
    "starter": { "computations": 2, "runs_per_month": 3, "concurrent_cvms": 1,
                 "vcpu_hours_per_month": null, "members": 2 },
    "frozen":  { "computations": null, "runs_per_month": null, "concurrent_cvms": null,
                 "vcpu_hours_per_month": 0, "members": null },
    "open":    { "computations": null, "runs_per_month": null, "concurrent_cvms": null,
                 "vcpu_hours_per_month": null, "members": null } },
  "prices": {
    "none":    { "vcpu_hour": 3600, "memory_gib_hour": 0, "run": 0 },
    "sev-snp": { "vcpu_hour": 3600, "memory_gib_hour": 0, "run": 0 },
    "tdx":     { "vcpu_hour": 3600, "memory_gib_hour": 0, "run": 0 } } }
JSON
cat >"$dir/umbra.conf" <<CONF
state_dir = $dir/state
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
[computations]
endpoint = tcp://127.0.0.1:$mp
pub_endpoint = tcp://127.0.0.1:$mq
provision_timeout_s = 600
assets_timeout_s = 60
results_timeout_s = 60
[billing]
endpoint = tcp://127.0.0.1:$lp
pub_endpoint = tcp://127.0.0.1:$lq
plans = $dir/plans.json
usage_interval_s = 1
[admin]
username = root
password = root-password-0123
[gateway]
listen = 127.0.0.1:$gw
CONF
start () {  # SERVICE: starts umbra-SERVICE
    local binary=$build/services/$1/umbra-$1
    "$binary" --config "$dir/umbra.conf" 2>>"$dir/$1.log" &
    pid[$1]=$!
}
for service in auth billing certs backends computations gateway; do start $service; done
base=http://127.0.0.1:$gw
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null "$base/health" \
    || fail "the platform did not come up"

# req METHOD PATH TOKEN [JSON]: sets status and body
req () {
    local method=$1 path=$2 token=$3 data=${4:-}
    local args=(-s -o "$dir/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    status=$(curl "${args[@]}" "$base$path")
    body=$(cat "$dir/body")
}
expect () { [ "$status" = "$1" ] || fail "$2: expected $1, got $status: $body"; }
refused () {  # STATUS PATTERN WHAT: the last answer refused with the reason
    expect "$1" "$3"
    grep -q -- "$2" <<<"$body" || fail "$3: the reason lacks '$2': $body"
}
login () {
    curl -s -H 'Content-Type: application/json' -d "{\"username\":\"$1\",\"password\":\"$2\"}" \
        "$base/users/tokens" | jq -r .access_token
}
declare -A token
token[root]=$(login root root-password-0123)
for user in alice bob carol; do
    curl -s -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$user-password-123\"}" "$base/users"
    token[$user]=$(login $user $user-password-123)
done
req POST /workspaces "${token[alice]}" '{"name":"lab"}';  expect 201 "workspace lab"
req POST /workspaces "${token[alice]}" '{"name":"hosts"}'; expect 201 "workspace hosts"

req GET /billing/plans "${token[alice]}"; expect 200 "plans"
[ "$(jq -r '.plans | length' <<<"$body")" = 3 ] && [ "$(jq -r .default_plan <<<"$body")" = starter ] \
    || fail "plans: $body"
req GET /workspaces/lab/billing "${token[alice]}"; expect 200 "the account"
[ "$(jq -r .plan <<<"$body")" = starter ] && [ "$(jq -r .balance.total <<<"$body")" = 0 ] \
    && [ "$(jq -r .limits.members <<<"$body")" = 2 ] || fail "the account: $body"
req GET /workspaces/lab/billing "${token[bob]}"; expect 404 "another workspace's account"
ok "plans from the plans file; a new workspace is on the default plan with nothing"

# ---------------------------------------------------------------- limits
req POST /workspaces/lab/invitations "${token[alice]}" '{"username":"bob","role":"member"}'
expect 201 "the second member"
invitation=$(jq -r .id <<<"$body")
req POST /workspaces/lab/invitations "${token[alice]}" '{"username":"carol","role":"member"}'
refused 403 "(limit 'members'); the workspace has 2" "a third member"
req GET /workspaces/lab/invitations "${token[alice]}"
[ "$(jq -r '.items | length' <<<"$body")" = 1 ] || fail "a refused invitation was written: $body"
req POST "/invitations/$invitation/accept" "${token[bob]}"; expect 200 "bob accepts"
ok "members: the plan's 2 (a pending invitation counts); the third is refused by auth, naming the limit"

definition () {  # NAME: a computation alice alone takes every part in, 1 vCPU
    jq -n --arg name "$1" '{name: $name, algorithm: {provider: "alice", type: "python"},
        datasets: [{provider: "alice", filename: "d.csv"}], consumers: ["alice"],
        backend: {tee: "none", vcpus: 1, memory_mb: 512}, run_timeout_s: 60}'
}
"$umbra" keys generate --type ed25519 --out "$dir/alice" >/dev/null
key_json=$(jq -n --rawfile k "$dir/alice.pub" '{key: $k}')
hash=$(printf 'x' | sha256sum | cut -d' ' -f1)
declare -a cmps
ready () {  # NAME: creates a computation ready to run; its id in cmps
    req POST /workspaces/lab/computations "${token[alice]}" "$(definition "$1")"
    expect 201 "computation $1"
    local id; id=$(jq -r .id <<<"$body")
    req PUT "/workspaces/lab/computations/$id/participants/me/key" "${token[alice]}" "$key_json"
    expect 200 "the key of $1"
    for asset in algorithm d.csv; do
        req PUT "/workspaces/lab/computations/$id/assets/$asset" "${token[alice]}" "{\"hash\":\"$hash\"}"
        expect 200 "the hash of $asset of $1"
    done
    cmps+=("$id")
}
ready c0; ready c1
req POST /workspaces/lab/computations "${token[alice]}" "$(definition c2)"
refused 403 "(limit 'computations'); the workspace has 2" "a third computation"
req GET /workspaces/lab/computations "${token[alice]}"
[ "$(jq -r '.items | length' <<<"$body")" = 2 ] || fail "a refused computation was written: $body"
ok "computations: the plan's 2; the third is refused by computations, naming the limit"

req POST "/workspaces/lab/computations/${cmps[0]}/runs" "${token[alice]}"
refused 402 "the run may cost" "a run without credit"
cost=$(grep -o 'the run may cost [0-9]*' <<<"$body" | grep -o '[0-9]*$')
[ "$cost" -gt 0 ] || fail "the cost: $body"
req GET "/workspaces/lab/computations/${cmps[0]}/runs" "${token[alice]}"
[ "$(jq -r '.items | length' <<<"$body")" = 0 ] || fail "a refused run was written: $body"
ok "runs: refused without credit ($cost µcr needed), and nothing is written"

req POST /workspaces/lab/billing/credits "${token[alice]}" '{"amount": 1000, "reference": "self-1"}'
refused 403 "platform administrators" "a member adding credit"
credit=$((3 * cost + cost / 2))
req POST /workspaces/lab/billing/credits "${token[root]}" "{\"amount\": $credit, \"reference\": \"pay-1\"}"
expect 201 "credit"
req POST /workspaces/lab/billing/credits "${token[root]}" "{\"amount\": $credit, \"reference\": \"pay-1\"}"
expect 200 "the same credit again"
[ "$(jq -r .replayed <<<"$body")" = true ] && [ "$(jq -r .balance.available <<<"$body")" = $credit ] \
    || fail "a repeated credit was added twice: $body"
req POST /workspaces/lab/billing/credits "${token[root]}" '{"amount": 5, "reference": "pay-1"}'
refused 409 "duplicate_reference" "a reference reused for another amount"
ok "credit: administrators only, once per reference ($credit µcr: three runs and a half)"

# The race: twelve computations, twelve starts at once, credit for three
req PUT /workspaces/lab/billing/plan "${token[root]}" '{"plan": "open"}'; expect 200 "plan open"
cmps=()
for i in $(seq 1 12); do ready "r$i"; done
for i in $(seq 0 11); do
    curl -s -o "$dir/race-$i" -w '%{http_code}\n' -X POST -H "Authorization: Bearer ${token[alice]}" \
        "$base/workspaces/lab/computations/${cmps[$i]}/runs" >"$dir/race-$i.status" &
done
wait_jobs () { for j in $(jobs -p); do [[ " ${pid[*]} " == *" $j "* ]] || wait "$j"; done; }
wait_jobs
started=$(cat "$dir"/race-*.status | grep -c '^201$' || true)
poor=$(cat "$dir"/race-*.status | grep -c '^402$' || true)
[ "$started" = 3 ] && [ "$poor" = 9 ] || fail "the race: $started started, $poor refused: $(cat "$dir"/race-*.status | tr '\n' ' ')"
grep -l insufficient_credit "$dir"/race-? "$dir"/race-?? 2>/dev/null | wc -l | grep -q '^9$' \
    || fail "the refusals do not say why"
req GET /workspaces/lab/billing "${token[alice]}"
[ "$(jq -r .balance.available <<<"$body")" = $((credit - 3 * cost)) ] \
    && [ "$(jq -r .balance.reserved <<<"$body")" = $((3 * cost)) ] || fail "after the race: $body"
ok "twelve starts at once against credit for three: 3 started, 9 refused (402), nothing overspent"

req PUT /workspaces/lab/billing/plan "${token[root]}" '{"plan": "starter"}'; expect 200 "plan starter"
req POST /workspaces/lab/billing/credits "${token[root]}" "{\"amount\": $((20 * cost)), \"reference\": \"pay-2\"}"
expect 201 "more credit"
free_cmp=
for c in "${cmps[@]}"; do
    req GET "/workspaces/lab/computations/$c/runs" "${token[alice]}"
    [ "$(jq -r '.items | length' <<<"$body")" = 0 ] && { free_cmp=$c; break; }
done
req POST "/workspaces/lab/computations/$free_cmp/runs" "${token[alice]}"
refused 403 "(limit 'runs_per_month')" "a fourth run this month"
ok "runs per month: the plan's 3 (open reservations count); the fourth is refused, naming the limit"

# CVMs, in a workspace with a host
req POST /workspaces/hosts/backends "${token[alice]}" '{"name":"t","uri":"test:///default"}'
expect 201 "a host"
cvm_json='{"tee":"none","vcpus":2,"memory_mb":128}'
req POST /workspaces/hosts/cvms "${token[alice]}" "$cvm_json"
refused 402 "available credit is 0" "a CVM without credit"
req POST /workspaces/hosts/billing/credits "${token[root]}" '{"amount": 1000000, "reference": "pay-h"}'
expect 201 "credit for CVMs"
req POST /workspaces/hosts/cvms "${token[alice]}" "$cvm_json"; expect 201 "a CVM"
cvm=$(jq -r .id <<<"$body")
req POST /workspaces/hosts/cvms "${token[alice]}" "$cvm_json"
refused 403 "(limit 'concurrent_cvms'); the workspace has 1" "a second CVM"
req GET /workspaces/hosts/cvms "${token[alice]}"
[ "$(jq -r '.items | length' <<<"$body")" = 1 ] || fail "a refused CVM was written: $body"
ok "concurrent CVMs: the plan's 1; the second is refused by backends; no credit refuses one too"

# Metering: the CVM's time comes in usage records, charged at 2 µcr a second
sleep 3
req DELETE "/workspaces/hosts/cvms/$cvm" "${token[alice]}"; expect 200 "destroy the CVM"
waited=0
while :; do
    req GET /workspaces/hosts/billing/ledger "${token[alice]}"
    charged=$(jq '[.entries[] | select(.kind == "usage" and .account == "platform:revenue") | .amount] | add // 0' <<<"$body")
    seconds=$(jq '[.entries[] | select(.kind == "usage" and .account == "platform:revenue")] | length' <<<"$body")
    [ "$charged" -ge 6 ] && break
    [ $waited -lt 100 ] || fail "no usage was charged: $body"
    sleep 0.1; waited=$((waited + 1))
done
req GET /workspaces/hosts/billing "${token[alice]}"
[ "$(jq -r .usage.vcpu_seconds <<<"$body")" = "$charged" ] && [ "$(jq -r .balance.available <<<"$body")" = $((1000000 - charged)) ] \
    || fail "metering: $charged µcr charged in $seconds records: $body"
ok "CVM time metered by backends and charged: $charged µcr ($seconds records)"

req PUT /workspaces/hosts/billing/plan "${token[root]}" '{"plan": "frozen"}'; expect 200 "plan frozen"
req POST /workspaces/hosts/cvms "${token[alice]}" "$cvm_json"
refused 403 "(limit 'vcpu_hours_per_month')" "a CVM past the month's vCPU-hours"
ok "vCPU-hours: a plan's allowance, once used, refuses CVMs, naming the limit"

metrics=$(curl -s "$base/metrics")     # whole, then searched: grep -q would cut curl short
grep -q 'umbra_billing_refusals_total{service="billing",limit="balance"}' <<<"$metrics" \
    || fail "refusals are not in /metrics: $(grep billing_refusals <<<"$metrics")"
ok "refusals counted in /metrics by the limit that refused them"

# ---------------------------------------------------------------- SIGKILL during settlement
req PUT /workspaces/lab/billing/plan "${token[root]}" '{"plan": "open"}'; expect 200 "plan open"
declare -A runs
for c in "${cmps[@]}"; do
    req GET "/workspaces/lab/computations/$c/runs" "${token[alice]}"
    run=$(jq -r '.items[0].id // empty' <<<"$body")
    if [ -z "$run" ]; then
        req POST "/workspaces/lab/computations/$c/runs" "${token[alice]}"; expect 201 "a run of $c"
        run=$(jq -r .id <<<"$body")
    fi
    runs[$c]=$run
done
[ ${#runs[@]} = 12 ] || fail "twelve runs: ${#runs[@]}"
req GET /workspaces/lab/billing "${token[alice]}"
[ "$(jq -r .balance.reserved <<<"$body")" = $((12 * cost)) ] || fail "twelve reservations: $body"
# Half the runs are stopped and settled; billing is then held still while the other half's stops
# ask it to settle, and killed with those settlements in flight. Both halves are fixed, not left
# to how fast billing drains a burst: a kill timed by watching the log raced it and sometimes
# came after the last settlement.
settled_so_far () { grep -c 'µcr charged' "$dir/billing.log" || true; }
earlier=$(settled_so_far)
stop_runs () {
    for c in "$@"; do
        curl -s -o /dev/null -X POST -H "Authorization: Bearer ${token[alice]}" \
            "$base/workspaces/lab/computations/$c/runs/${runs[$c]}/stop" &
    done
    wait_jobs
}
all=("${!runs[@]}")
stop_runs "${all[@]:0:6}"
waited=0
until [ "$(settled_so_far)" -ge $((earlier + 6)) ]; do
    [ $waited -lt 300 ] || fail "the first six stops were not settled: $(settled_so_far)"
    sleep 0.1; waited=$((waited + 1))
done
kill -STOP "${pid[billing]}"
stop_runs "${all[@]:6}"
sleep 0.5
kill -KILL "${pid[billing]}"
kill -CONT "${pid[billing]}" 2>/dev/null || true
wait "${pid[billing]}" 2>/dev/null || true
before=$(( $(settled_so_far) - earlier ))
[ "$before" = 6 ] || fail "six settlements before the kill, not $before"
start billing
waited=0
while :; do
    req GET /workspaces/lab/billing "${token[alice]}"
    [ "$status" = 200 ] && [ "$(jq -r .balance.reserved <<<"$body")" = 0 ] && break
    [ $waited -lt 600 ] || fail "the settlements did not all land: $body"
    sleep 0.1; waited=$((waited + 1))
done
req GET "/workspaces/lab/billing/ledger?limit=1000" "${token[alice]}"; expect 200 "the ledger"
for c in "${!runs[@]}"; do
    n=$(jq --arg r "${runs[$c]}" '[.entries[] | select(.ref == $r and .kind == "settle"
                                   and (.account | endswith(":reserved")))] | length' <<<"$body")
    [ "$n" = 1 ] || fail "run ${runs[$c]} settled $n times: $body"
done
[ "$(jq '[.entries[] | select(.kind == "release" or .kind == "expire")] | length' <<<"$body")" = 0 ] \
    || fail "a stopped run was released, not settled: $body"
charged=$(jq '[.entries[] | select(.kind == "settle" and .account == "platform:revenue") | .amount] | add // 0' <<<"$body")
req GET /billing/verify "${token[root]}"; expect 200 "verify"
[ "$(jq -r .ok <<<"$body")" = true ] || fail "the ledger does not add up: $body"
req GET /billing/verify "${token[alice]}"; refused 403 "platform administrators" "verify by a member"
req GET /workspaces/lab/billing "${token[alice]}"
[ "$(jq -r .balance.total <<<"$body")" = $((credit + 20 * cost - charged)) ] \
    || fail "the balance is not credits - charges ($credit + $((20 * cost)) - $charged): $body"
after=$(( $(settled_so_far) - earlier - before ))
[ "$after" = 6 ] || fail "the six settlements in flight at the kill landed $after times after it"
ok "umbra-billing killed (SIGKILL) with 6 of 12 settlements in flight ($before settled before the kill, $after after the restart): each settled once, $charged µcr charged, the ledger adds up"

# ---------------------------------------------------------------- statements and the ledger
month=$(date -u +%Y-%m)
req GET "/workspaces/lab/billing/statements/$month" "${token[alice]}"; expect 200 "the statement"
total=$(curl -s -H "Authorization: Bearer ${token[alice]}" "$base/workspaces/lab/billing" | jq .balance.total)
[ "$(jq -r .opening <<<"$body")" = 0 ] && [ "$(jq -r .closing <<<"$body")" = "$total" ] \
    && [ "$(jq -r .credits <<<"$body")" = $((credit + 20 * cost)) ] && [ "$(jq -r .charges <<<"$body")" = "$charged" ] \
    || fail "the statement does not add up to the balance ($total): $body"
curl -s -D "$dir/headers" -o "$dir/statement.csv" -H "Authorization: Bearer ${token[alice]}" \
    "$base/workspaces/lab/billing/statements/$month/csv"
grep -qi '^content-type: text/csv' "$dir/headers" || fail "the CSV's type: $(cat "$dir/headers")"
head -n 1 "$dir/statement.csv" | grep -q '^time,txn,kind,ref,available,reserved,charge' || fail "the CSV's header"
[ "$(grep -c ',settle,' "$dir/statement.csv")" = 12 ] || fail "the CSV's settlements: $(cat "$dir/statement.csv")"
req GET /workspaces/lab/billing/statements "${token[alice]}"; expect 200 "statements"
[ "$(jq -r '.items[0].month' <<<"$body")" = "$month" ] && [ "$(jq -r '.items[0].closing' <<<"$body")" = "$total" ] \
    || fail "statements: $body"
ok "the month's statement (JSON and CSV) opens at 0 and closes at the balance"

# ---------------------------------------------------------------- bad input
req GET "/workspaces/lab/billing/ledger?limit=1000" "${token[alice]}"
entries=$(jq '.entries | length' <<<"$body")
req POST /workspaces/lab/billing/credits "${token[root]}" '{"amount": -5, "reference": "neg"}'
refused 422 "amount" "a negative credit"
req POST /workspaces/lab/billing/credits "${token[root]}" '{"amount": 1000000000000000000, "reference": "huge"}'
refused 422 "amount" "an absurd credit"
req POST /workspaces/lab/billing/credits "${token[root]}" '{"amount": "ten", "reference": "str"}'
expect 400 "a credit that is not a number"
req POST /workspaces/lab/billing/credits "${token[root]}" '{"amount": 5, "reference": "=HYPERLINK(1)"}'
refused 422 "reference" "a reference a spreadsheet would run"
req POST /workspaces/nowhere/billing/credits "${token[root]}" '{"amount": 5, "reference": "x"}'
refused 404 "no workspace 'nowhere'" "credit for an unknown workspace"
req PUT /workspaces/lab/billing/plan "${token[root]}" '{"plan": "gold"}'
refused 422 "'gold' is not one of" "an unknown plan"
req PUT /workspaces/lab/billing/plan "${token[alice]}" '{"plan": "open"}'
refused 403 "platform administrators" "a member choosing a plan"
req GET "/workspaces/lab/billing/statements/2026-13" "${token[alice]}"; refused 422 "month" "a bad month"
req GET "/workspaces/lab/billing/ledger?limit=0" "${token[alice]}"; refused 422 "limit" "a bad limit"
req GET "/workspaces/lab/billing/ledger?limit=1000" "${token[alice]}"
[ "$(jq '.entries | length' <<<"$body")" = "$entries" ] || fail "bad input wrote to the ledger"
ok "bad input: 4xx naming the field, nothing written"

echo "$checks checks passed"
