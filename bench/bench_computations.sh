#!/usr/bin/env bash
# bench/bench_computations.sh - the computations service (proto/msgpack/computations.md) through
# the gateway: definitions created and listed, runs from start to results, and the run events it
# stores; each figure against a peer measured in the same run.
#
#     bench/bench_computations.sh [--creates N] [--runs N] [--connections N] [--bare-rounds N] [--build DIR]
#
# The whole platform (`umbra up`) runs on a temporary state directory and free ports, every
# service endpoint set by UMBRA_* variables (as tests/integration/computations_rest.sh starts it).
# One user holds every role (owner, algorithm and data provider, result consumer); the load
# generator and run driver is bench/bench_computations.py (Python's standard library only).
#
# 1. Definitions: --creates (default 1000) POST /workspaces/{ws}/computations over --connections
#    (default 16) keep-alive connections of one load generator (a selector loop, one request in
#    flight per connection). Each create is HTTP + token check + a mesh call to computations,
#    which asks auth for the workspace's members (auth.members.list, a worker call with its own
#    token check and SQLite read) and writes the computation and its audit record (hash-chained)
#    in one SQLite transaction. Then every connection walks the whole listing
#    (GET ...?limit=100&cursor=...) until about creates/5 pages were read; each walk must see every
#    computation. Requests/s, p50 and p99 for both. The peer: authenticated GET /workspaces (HTTP,
#    token, one auth call, a SQLite read: what every request pays before computations' own work)
#    through the same gateway, the same generator and connections, as many requests;
#    computations/peer is what the computations path costs. GET /workspaces without a token (401
#    from the gateway alone: no mesh call) shows the generator's own ceiling: it shares the
#    machine's cores with the platform.
# 2. Runs: --runs (default 50) computations of tests/integration/seed/linreg.py over data1.csv
#    on ceil(runs / cores) process hosts (`process:///bench-K`, insecure_dev: a process host offers
#    the machine's CPUs, and the scheduler does not overcommit), then as many runs started at once
#    (POST .../runs, one thread each). Each run is followed live (?follow=1, Server-Sent Events);
#    at AwaitingAssets the real CLI uploads (`umbra algo`, `umbra data` with --agent and
#    --attest-endpoint of the run, --insecure-dev), at ResultsReady `umbra result` fetches it,
#    and the run must end Completed. Per run: start request -> Completed; median and p99, the wall
#    time of all, the median of each stage, and failures with their reasons (counted; the bench
#    goes on). A GET the gateway answers 502..504 (the platform too busy to answer within
#    gateway.timeout_ms) is retried and counted; so is an event stream that ends with an error
#    event (resumed with Last-Event-ID). Then the time from the last Completed until every run's
#    CVM is gone (computations has backends destroy them), at most 120 s.
#    The peer: the same CLI steps against a standalone `umbra-agent --manifest M --attestation
#    none --exit-when-done` (M: the platform's own manifest of one of these computations), timed
#    from its start to its exit once Complete, --bare-rounds sequential rounds (default 5),
#    median. Having no event stream, it polls `umbra agent status` every 20 ms for the results.
#    service/bare is what the platform adds to a run (backends' CVM, bridges, attestation,
#    computations' follower and store) when --runs of them share the machine.
# 3. Events: every run's event log (GET .../runs/{run}/events, paged) counted and divided by the
#    time from the first run's start to the last Completed; per run too. The peer: the backends
#    event logs of the same CVMs (GET /workspaces/{ws}/cvms/{cvm}/events) over the same window.
#    computations stores each backends event plus its own state events: the ratio is >= 1.
# The platform's warnings (UMBRA_LOG_LEVEL, default warn) are counted by kind at the end, the
# expected ones (insecure_dev hosts, revoked agent identities) left out: a slow path shows there.
# Nothing is asserted on time; the exit code is 0 unless something failed to work. Prints
# `KEY = VALUE` figure lines (cmp.*) for bench/run. Stops the platform (SIGTERM) and deletes the
# work directory, leaving nothing behind.
# The build directory: --build, else BENCH_BUILD_DIR, else build-bench. TMPDIR (default /tmp)
# holds the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
creates=1000
runs=50
connections=16
bare_rounds=5
build=${BENCH_BUILD_DIR:-$root/build-bench}
usage () { echo "usage: $0 [--creates N] [--runs N] [--connections N] [--bare-rounds N] [--build DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --creates) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; creates=$2; shift 2 ;;
        --runs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; runs=$2; shift 2 ;;
        --connections) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; connections=$2; shift 2 ;;
        --bare-rounds) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; bare_rounds=$2; shift 2 ;;
        --build) build=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
agent_bin=$build/guest/agent/umbra-agent
python=/usr/bin/python3
driver=$root/bench/bench_computations.py
for tool in "$umbra" "$agent_bin"; do
    [ -x "$tool" ] || { echo "bench_computations: $tool is not built" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "bench_computations: jq is needed" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench_computations: curl is needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/umbra-bench-cmp.XXXXXX")
pid=
cleanup () {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail () {
    echo "bench_computations: $*" >&2
    [ -f "$work/umbra.log" ] && { echo "--- umbra.log" >&2; tail -n 30 "$work/umbra.log" >&2; }
    exit 1
}
value () { awk -v key="$2" '$1 == key && $2 == "=" { print $3 }' "$1"; }

# ---------------------------------------------------------------- the platform
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
# Billing is on (every create and run asks it) but never refuses: no limits, credit for every run
export UMBRA_BILLING_DEFAULT_PLAN=enterprise UMBRA_BILLING_WELCOME_CREDIT=1000000000000
export UMBRA_LOG_LEVEL=${UMBRA_LOG_LEVEL:-warn}
UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=bench-root-password \
    "$umbra" up --state "$work/state" --listen "127.0.0.1:$gw" >"$work/umbra.log" 2>&1 &
pid=$!
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null "$base/health" \
    || fail "the platform did not come up"

# post PATH JSON [TOKEN]: prints the body; fails unless the status is 2xx
post () {
    local args=(-s -o "$work/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json'
                --data-binary "$2")
    [ -n "${3:-}" ] && args+=(-H "Authorization: Bearer $3")
    local status
    status=$(curl "${args[@]}" "$base$1")
    [[ $status == 2?? ]] || fail "POST $1 -> $status: $(cat "$work/body")"
    cat "$work/body"
}
post /users '{"username":"bench","password":"bench-password-1"}' >/dev/null
token=$(post /users/tokens '{"username":"bench","password":"bench-password-1"}' | jq -r .access_token)
[ -n "$token" ] && [ "$token" != null ] || fail "no access token"
post /workspaces '{"name":"bench"}' "$token" >/dev/null         #  the definitions
post /workspaces '{"name":"runs"}' "$token" >/dev/null          #  the runs' computations and hosts
"$umbra" keys generate --type ed25519 --out "$work/participant" >/dev/null || fail "umbra keys generate"
export TOKEN=$token UMBRA=$umbra SEED=$root/tests/integration/seed KEY=$work/participant
echo "platform up on $base; user bench, workspaces bench and runs; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- 1. definitions
echo
echo "== computations: $creates created and listed through the gateway, $connections connections, vs GET /workspaces"
$python "$driver" rest "$base" bench "$creates" "$connections" | tee "$work/rest.out" \
    || fail "creating or listing computations failed (see above)"
[ -n "$(value "$work/rest.out" cmp.list.requests_per_s)" ] || fail "the REST load printed no figures"

# ---------------------------------------------------------------- 2. runs
echo
echo "== computations: $runs runs at once on process hosts, start -> Completed, vs a standalone agent"
per_host=$(post /workspaces/runs/backends '{"name":"proc-1","uri":"process:///bench-1","insecure_dev":true}' "$token" | jq -r .caps.cpus)
[[ $per_host =~ ^[1-9][0-9]*$ ]] || fail "the process host has no CPUs: $per_host"
hosts=$(( (runs + per_host - 1) / per_host ))
for k in $(seq 2 "$hosts"); do
    post /workspaces/runs/backends "{\"name\":\"proc-$k\",\"uri\":\"process:///bench-$k\",\"insecure_dev\":true}" "$token" >/dev/null
done
echo "$hosts process hosts of $per_host vCPUs each"
load_before=$(cut -d' ' -f1 /proc/loadavg)
mkdir -p "$work/runs"
$python "$driver" runs "$base" runs "$runs" "$work/runs" | tee "$work/runs.out" \
    || fail "the runs could not be driven (see above)"
[ -n "$(value "$work/runs.out" cmp.runs_wall_s)" ] || fail "the runs printed no figures"
# Every run's CVM goes with it: none may be left live (the driver waited up to 120 s for that)
live=$(curl -s -H "Authorization: Bearer $token" "$base/workspaces/runs/backends" | jq '[.items[].capacity.cvms] | add')
[ "$live" = 0 ] || fail "$live CVMs of finished runs are still live"
echo "every run's CVM is gone (the hosts' capacity.cvms is 0)"
$python "$driver" bare "$agent_bin" "$work/runs" "$bare_rounds" | tee "$work/bare.out" \
    || fail "the standalone agent could not be driven (see above)"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ $rc -eq 0 ] || fail "umbra up exited $rc on SIGTERM"
# What the platform warned about (UMBRA_LOG_LEVEL=warn), ids and times folded: a slow path shows
# here (a full worker queue, deadlines missed). The INSECURE notices of insecure_dev hosts, and
# the revocations of the runs' agent identities, are expected.
echo
echo "platform warnings, by kind (the 5 most frequent):"
grep -E ' (WARN|ERROR) ' "$work/umbra.log" \
    | grep -v -e 'is INSECURE' -e 'INSECURE: the agent' -e 'revoked: refused from now on' \
    | sed -E 's/^[0-9TZ:.-]+ +//; s/(cmp|run|cvm|usr|ws)_[0-9a-f]{16}/\1_ID/g; s/[0-9]+(\.[0-9]+)?/N/g' \
    | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  /' | tee "$work/warnings.out"
[ -s "$work/warnings.out" ] || echo "  none"

rest () { value "$work/rest.out" "$1"; }
runv () { value "$work/runs.out" "$1"; }
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
create_ratio=$(ratio "$(rest cmp.create.requests_per_s)" "$(rest cmp.workspaces.requests_per_s)")
list_ratio=$(ratio "$(rest cmp.list.requests_per_s)" "$(rest cmp.workspaces.requests_per_s)")
run_ratio=$(ratio "$(runv cmp.run_e2e_median_s)" "$(value "$work/bare.out" cmp.bare_e2e_median_s)")
cat <<EOF

== computations summary ($(nproc) cores, load $load_before before the runs, $(cut -d' ' -f1 /proc/loadavg) after)
  create, $creates, $connections connections  $(printf '%8s' "$(rest cmp.create.requests_per_s)") requests/s   p50 $(rest cmp.create.p50_ms) ms, p99 $(rest cmp.create.p99_ms) ms
  list pages of 100            $(printf '%8s' "$(rest cmp.list.requests_per_s)") requests/s   p50 $(rest cmp.list.p50_ms) ms, p99 $(rest cmp.list.p99_ms) ms   ($(rest cmp.list.requests) pages, $(rest cmp.list.walks) whole walks)
  GET /workspaces (peer)       $(printf '%8s' "$(rest cmp.workspaces.requests_per_s)") requests/s   p50 $(rest cmp.workspaces.p50_ms) ms, p99 $(rest cmp.workspaces.p99_ms) ms
  401 from the gateway alone   $(printf '%8s' "$(rest cmp.gateway.requests_per_s)") requests/s   p50 $(rest cmp.gateway.p50_ms) ms, p99 $(rest cmp.gateway.p99_ms) ms   (no mesh call: the generator's ceiling)
  create / peer, list / peer   $create_ratio, $list_ratio
  runs at once                 $(printf '%8s' "$(runv cmp.runs)")   completed $(runv cmp.runs_completed), failed $(runv cmp.runs_failed), all in $(runv cmp.runs_wall_s) s
  start -> Completed           $(printf '%8s' "$(runv cmp.run_e2e_median_s)") s median, p99 $(runv cmp.run_e2e_p99_s) s
    stages, medians            start -> AwaitingAssets $(runv cmp.run_provision_median_s) s, -> endpoints $(runv cmp.run_endpoints_median_s) s, umbra algo+data $(runv cmp.run_uploads_median_s) s,
                               -> ResultsReady $(runv cmp.run_compute_median_s) s, umbra result $(runv cmp.run_result_median_s) s, -> Completed $(runv cmp.run_finish_median_s) s
    event streams resumed      $(printf '%8s' "$(runv cmp.stream_errors)")   (?follow=1 streams that ended with an error event)
    GETs retried after 5xx     $(printf '%8s' "$(runv cmp.gets_retried)")   (502..504: the platform did not answer within the gateway's deadline)
  last Completed -> every CVM gone $(printf '%4s' "$(runv cmp.teardown_s)") s   (computations asks backends to destroy each run's CVM)
  standalone agent (peer)      $(printf '%8s' "$(value "$work/bare.out" cmp.bare_e2e_median_s)") s median of $bare_rounds sequential (rounds $(value "$work/bare.out" cmp.bare_rounds) s; umbra algo+data $(value "$work/bare.out" cmp.bare_uploads_median_s) s, umbra result $(value "$work/bare.out" cmp.bare_result_median_s) s)
  service / bare               $(printf '%8s' "$run_ratio")
  run events stored            $(printf '%8s' "$(runv cmp.run_events_per_s)") /s   ($(runv cmp.run_events) in $(runv cmp.events_window_s) s, $(runv cmp.run_events_per_run) per run; $(runv cmp.run_events_by_source))
  backends events, same CVMs   $(printf '%8s' "$(runv cmp.cvm_events_per_s)") /s   ($(runv cmp.cvm_events), $(runv cmp.cvm_events_per_run) per run; peer)
  run / backends events        $(printf '%8s' "$(runv cmp.events_ratio)")   (>= 1: each backends event plus the run's own states)
cmp.create_over_peer = $create_ratio
cmp.list_over_peer = $list_ratio
cmp.run_over_bare = $run_ratio
EOF
