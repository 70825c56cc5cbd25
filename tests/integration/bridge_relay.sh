#!/usr/bin/env bash
# bridge_relay - two real `umbra-bridge` processes linked by a unix socket (guest side listening,
# host side connecting, as with a libvirt channel) relay the real umbra-agent's endpoints:
# `umbra attestation get` (attest stream) and `umbra agent status` (CURVE, agent stream) through
# the host bridge's listeners. Then the guest bridge is killed (SIGKILL) and restarted: the host
# bridge reconnects and the same commands work again. SIGTERM ends a bridge with exit 0; usage
# errors exit 2; a listener that cannot bind exits 1.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${TEST_BUILD_DIR:-$here/build}
bridge=$build/guest/bridge/umbra-bridge
agent=$build/guest/agent/umbra-agent
umbra=$build/cli/umbra
dir=$(mktemp -d /tmp/umbra-bridge-relay.XXXXXX)
pids=()
cleanup () {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT

fail () {
    echo "FAIL: $*"
    for log in "$dir"/*.log; do
        [ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
    done
    exit 1
}
for binary in "$bridge" "$agent" "$umbra"; do
    [ -x "$binary" ] || fail "no $binary (set TEST_BUILD_DIR)"
done
free_port () { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_line FILE PATTERN: waits up to 10 s for a line matching PATTERN in FILE
wait_line () {
    for _ in $(seq 1 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# usage and start-up errors
rc=0; "$bridge" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "no arguments: exit $rc, expected 2"
rc=0; "$bridge" --link carrier-pigeon:1 --target a=tcp://127.0.0.1:1 >/dev/null 2>"$dir/err" || rc=$?
[ $rc -eq 1 ] || fail "bad link spec: exit $rc, expected 1"
rc=0; "$bridge" --link tcp-listen:127.0.0.1:0 --listen bad >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--listen without NAME=ADDR: exit $rc, expected 2"
busy=$(free_port)
/usr/bin/python3 -c "import socket,time,sys; s=socket.socket(); s.bind(('127.0.0.1',$busy)); s.listen(); sys.stdout.write('x\n'); sys.stdout.flush(); time.sleep(30)" >"$dir/busy.out" &
busy_pid=$!
pids+=("$busy_pid")
wait_line "$dir/busy.out" x || fail "no busy port"
rc=0; "$bridge" --link tcp-listen:127.0.0.1:0 --listen a=tcp:127.0.0.1:$busy >/dev/null 2>"$dir/err" || rc=$?
[ $rc -eq 1 ] || fail "a listener on a busy port: exit $rc, expected 1"
grep -q "bind" "$dir/err" || fail "no reason for the busy port: $(cat "$dir/err")"
kill "$busy_pid" 2>/dev/null || true
echo "ok   usage errors exit 2, a bad link or a busy listener exit 1 with the reason"

# the agent, with attestation none, on loopback ports of the "guest"
ap=$(free_port); tp=$(free_port)
mkdir -p "$dir/work"
"$agent" --listen "tcp://127.0.0.1:$ap" --attest-listen "tcp://127.0.0.1:$tp" --workdir "$dir/work" \
    --attestation none >"$dir/agent.log" 2>&1 &
pids+=($!)
wait_line "$dir/agent.log" "listening on" || fail "the agent did not start"

link=$dir/link.sock
start_guest () {
    "$bridge" --link "unix-listen:$link" --target "agent=tcp://127.0.0.1:$ap" \
        --target "attest=tcp://127.0.0.1:$tp" --keepalive 500 >"$dir/guest.out" 2>>"$dir/guest.log" &
    guest_pid=$!
    pids+=("$guest_pid")
    wait_line "$dir/guest.out" "^umbra-bridge: ready" || fail "the guest bridge did not start"
}
start_guest
"$bridge" --link "unix-connect:$link" --listen agent=tcp:127.0.0.1:0 --listen attest=tcp:127.0.0.1:0 \
    --keepalive 500 >"$dir/host.out" 2>"$dir/host.log" &
host_pid=$!
pids+=("$host_pid")
wait_line "$dir/host.out" "^umbra-bridge: ready" || fail "the host bridge did not start"
ready=$(head -n 1 "$dir/host.out")
agent_ep=$(sed -n 's/.* agent=\(tcp:[^ ]*\).*/\1/p' <<<"$ready")
attest_ep=$(sed -n 's/.* attest=\(tcp:[^ ]*\).*/\1/p' <<<"$ready")
[ -n "$agent_ep" ] && [ -n "$attest_ep" ] || fail "no endpoints in the ready line: $ready"
echo "ok   bridges up: $ready"

check_agent () {
    local what=$1
    "$umbra" attestation get --agent "$agent_ep" --attest-endpoint "$attest_ep" --insecure-dev --json \
        --timeout 20 >"$dir/attestation.json" 2>"$dir/attestation.err" \
        || fail "$what: umbra attestation get through the bridge failed: $(cat "$dir/attestation.err")"
    jq -e . "$dir/attestation.json" >/dev/null || fail "$what: attestation output is not JSON"
    "$umbra" agent status --agent "$agent_ep" --attest-endpoint "$attest_ep" --insecure-dev \
        --timeout 20 >"$dir/status.out" 2>"$dir/status.err" \
        || fail "$what: umbra agent status through the bridge failed: $(cat "$dir/status.err")"
    [ -s "$dir/status.out" ] || fail "$what: empty status"
    echo "ok   $what: attestation get (attest stream) and agent status (CURVE, agent stream) through the bridges"
}
check_agent "first link"

# the guest bridge dies without a word, and comes back: the host reconnects
kill -KILL "$guest_pid"
wait "$guest_pid" 2>/dev/null || true
start_guest
check_agent "after the guest bridge was killed and restarted"
grep -q "streams closed" "$dir/host.log" || fail "the host bridge did not log the link loss"
echo "ok   the host bridge logged the link loss and reconnected"

# SIGTERM: exit 0, the unix link socket removed
kill -TERM "$host_pid"
rc=0; wait "$host_pid" || rc=$?
[ $rc -eq 0 ] || fail "the host bridge exited $rc on SIGTERM"
kill -TERM "$guest_pid"
rc=0; wait "$guest_pid" || rc=$?
[ $rc -eq 0 ] || fail "the guest bridge exited $rc on SIGTERM"
[ ! -e "$link" ] || fail "the link socket file was left behind"
echo "ok   SIGTERM ends both bridges with exit 0 and removes the link socket"
echo "bridge_relay: all checks passed"
