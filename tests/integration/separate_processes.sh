#!/usr/bin/env bash
# separate_processes - umbra-auth, umbra-billing, umbra-certs, umbra-backends, umbra-computations and
# umbra-gateway as six processes
# on one state directory and one settings file: the gateway reaches them over CURVE, a user
# registers and logs in through REST, registers a TEE host (libvirt's test driver) and creates a
# CVM on it, and every process stops cleanly on SIGTERM. Also: bad settings stop a service with
# exit 2.
set -euo pipefail
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
dir=$(mktemp -d /tmp/umbra-procs.XXXXXX)
pids=()
cleanup () {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
# ten distinct free ports, held open together while the kernel picks them
read -r gw ap pp cp cq hp bp bq mp mq lp lq < <(/usr/bin/python3 -c '
import socket
held = [socket.socket() for _ in range(12)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
cat >"$dir/umbra.conf" <<CONF
# one file for every process
state_dir = $dir/state
[log]
format = json
[auth]
endpoint = tcp://127.0.0.1:$ap
pub_endpoint = tcp://127.0.0.1:$pp
[certs]
endpoint = tcp://127.0.0.1:$cp
pub_endpoint = tcp://127.0.0.1:$cq
http_listen = 127.0.0.1:$hp
[backends]
endpoint = tcp://127.0.0.1:$bp
pub_endpoint = tcp://127.0.0.1:$bq
certify_agents = false
[computations]
endpoint = tcp://127.0.0.1:$mp
pub_endpoint = tcp://127.0.0.1:$mq
[billing]
endpoint = tcp://127.0.0.1:$lp
pub_endpoint = tcp://127.0.0.1:$lq
default_plan = enterprise
welcome_credit = 1000000
[gateway]
listen = 127.0.0.1:$gw
CONF

# Settings are validated before anything starts
rc=0; UMBRA_AUTH_ACCESS_TTL_S=5 "$build/services/auth/umbra-auth" --config "$dir/umbra.conf" 2>"$dir/err" || rc=$?
[ $rc -eq 2 ] && grep -q 'access_ttl_s' "$dir/err" || { echo "FAIL: a bad setting must exit 2 naming it (got $rc)"; cat "$dir/err"; exit 1; }
rc=0; UMBRA_NO_SUCH_SETTING=1 "$build/services/gateway/umbra-gateway" --config "$dir/umbra.conf" 2>"$dir/err" || rc=$?
[ $rc -eq 2 ] && grep -q 'UMBRA_NO_SUCH_SETTING' "$dir/err" || { echo "FAIL: an unknown UMBRA_ variable must exit 2 (got $rc)"; exit 1; }
rc=0; "$build/services/auth/umbra-auth" --no-such-flag 2>/dev/null || rc=$?
[ $rc -eq 2 ] || { echo "FAIL: a usage error must exit 2 (got $rc)"; exit 1; }
echo "ok   bad settings and usage errors exit 2"

"$build/services/auth/umbra-auth" --config "$dir/umbra.conf" 2>"$dir/auth.log" &
pids+=($!)
"$build/services/billing/umbra-billing" --config "$dir/umbra.conf" 2>"$dir/billing.log" &
pids+=($!)
"$build/services/certs/umbra-certs" --config "$dir/umbra.conf" 2>"$dir/certs.log" &
pids+=($!)
"$build/services/backends/umbra-backends" --config "$dir/umbra.conf" 2>"$dir/backends.log" &
pids+=($!)
"$build/services/computations/umbra-computations" --config "$dir/umbra.conf" 2>"$dir/computations.log" &
pids+=($!)
"$build/services/gateway/umbra-gateway" --config "$dir/umbra.conf" 2>"$dir/gateway.log" &
pids+=($!)
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null \
    "http://127.0.0.1:$gw/health" || { cat "$dir"/*.log; echo "FAIL: gateway not healthy"; exit 1; }
echo "ok   six processes up, gateway healthy"

code=$(curl -s -o "$dir/body" -w '%{http_code}' -H 'Content-Type: application/json' \
       -d '{"username":"erin","password":"erin-password-1"}' "http://127.0.0.1:$gw/users")
[ "$code" = 201 ] || { echo "FAIL: register via separate processes: $code $(cat "$dir/body")"; exit 1; }
code=$(curl -s -o "$dir/body" -w '%{http_code}' -H 'Content-Type: application/json' \
       -d '{"username":"erin","password":"erin-password-1"}' "http://127.0.0.1:$gw/users/tokens")
[ "$code" = 201 ] || { echo "FAIL: login: $code"; exit 1; }
token=$(jq -r .access_token "$dir/body")
code=$(curl -s -o "$dir/body" -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$gw/users/me")
[ "$code" = 200 ] && [ "$(jq -r .username "$dir/body")" = erin ] || { echo "FAIL: /users/me: $code"; exit 1; }
echo "ok   register, login and /users/me across processes"

b="http://127.0.0.1:$gw"
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
code=$(curl -s -o "$dir/body" -w '%{http_code}' "${auth[@]}" -d '{"name":"lab"}' "$b/workspaces")
[ "$code" = 201 ] || { echo "FAIL: workspace: $code $(cat "$dir/body")"; exit 1; }
code=$(curl -s -o "$dir/body" -w '%{http_code}' "${auth[@]}" -d '{"name":"t","uri":"test:///default"}' \
       "$b/workspaces/lab/backends")
[ "$code" = 201 ] && [ "$(jq -r .status "$dir/body")" = up ] \
    || { echo "FAIL: register a host: $code $(cat "$dir/body")"; exit 1; }
code=$(curl -s -o "$dir/body" -w '%{http_code}' "${auth[@]}" \
       -d '{"tee":"none","vcpus":1,"memory_mb":128}' "$b/workspaces/lab/cvms")
[ "$code" = 201 ] && [ "$(jq -r .state "$dir/body")" = Running ] \
    || { echo "FAIL: create a CVM: $code $(cat "$dir/body")"; exit 1; }
cvm=$(jq -r .id "$dir/body")
code=$(curl -s -o "$dir/body" -w '%{http_code}' -X DELETE "${auth[@]}" "$b/workspaces/lab/cvms/$cvm")
[ "$code" = 200 ] && [ "$(jq -r .state "$dir/body")" = Destroyed ] \
    || { echo "FAIL: destroy the CVM: $code $(cat "$dir/body")"; exit 1; }
echo "ok   a host and a CVM through the gateway and umbra-backends"
code=$(curl -s -o "$dir/body" -w '%{http_code}' "${auth[@]}" \
       -d '{"name":"c1","algorithm":{"provider":"erin"},"consumers":["erin"]}' "$b/workspaces/lab/computations")
[ "$code" = 201 ] && [ "$(jq -r .owner "$dir/body")" = "$(jq -r .id <<<"$(curl -s "${auth[@]}" "$b/users/me")")" ] \
    || { echo "FAIL: create a computation: $code $(cat "$dir/body")"; exit 1; }
echo "ok   a computation through the gateway and umbra-computations"
code=$(curl -s -o "$dir/body" -w '%{http_code}' "${auth[@]}" "$b/workspaces/lab/billing")
[ "$code" = 200 ] && [ "$(jq -r .plan "$dir/body")" = enterprise ] \
    && [ "$(jq -r .reported.computations "$dir/body")" = 0 ] \
    || { echo "FAIL: the workspace's account from umbra-billing: $code $(cat "$dir/body")"; exit 1; }
echo "ok   the account through the gateway and umbra-billing (computations asked it first)"

# JSON-lines logs, one object per line
jq -e -s 'length > 0 and all(.[]; has("level") and has("msg"))' "$dir/auth.log" >/dev/null \
    || { echo "FAIL: auth log is not JSON lines"; head "$dir/auth.log"; exit 1; }
echo "ok   log.format=json gives JSON lines"

names=(auth billing certs backends computations gateway)
for i in "${!pids[@]}"; do
    kill -TERM "${pids[$i]}"
    rc=0; wait "${pids[$i]}" || rc=$?
    [ $rc -eq 0 ] || { echo "FAIL: umbra-${names[$i]} exited $rc on SIGTERM:"; tail -n 30 "$dir/${names[$i]}.log"; exit 1; }
done
pids=()
echo "ok   all six stop cleanly on SIGTERM"
