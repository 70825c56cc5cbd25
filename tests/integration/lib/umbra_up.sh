# lib/umbra_up.sh NAME - sourced by an integration test that drives a whole platform through
# `umbra up` and stops and starts it: the build, a work directory /tmp/umbra-NAME.* removed at
# exit (with the platform stopped), ok/fail, twelve free ports with every UMBRA_* endpoint set
# to them (the gateway at $base, the certs HTTP port $hp), the state in $dir/state, and
#   up                   starts `umbra up` and waits for /health
#   down                 SIGTERM; fails unless it exits 0
#   post PATH TOKEN JSON POST through the gateway (TOKEN may be ""); prints the body
#   split_chain CHAIN ISSUING ROOT   the chain's first certificate to ISSUING, the rest to ROOT
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
umbra=$build/cli/umbra
dir=$(mktemp -d "/tmp/umbra-$1.XXXXXX")
pid=
cleanup () {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; tail -n 20 "$dir/umbra.log" >&2 || true; exit 1; }

read -r gw ap aq cp cq hp bp bq mp mq lp lq < <(/usr/bin/python3 -c '
import socket
held = [socket.socket() for _ in range(12)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
base=http://127.0.0.1:$gw
export UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$ap UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$aq \
       UMBRA_CERTS_ENDPOINT=tcp://127.0.0.1:$cp UMBRA_CERTS_PUB_ENDPOINT=tcp://127.0.0.1:$cq \
       UMBRA_CERTS_HTTP_LISTEN=127.0.0.1:$hp \
       UMBRA_BACKENDS_ENDPOINT=tcp://127.0.0.1:$bp UMBRA_BACKENDS_PUB_ENDPOINT=tcp://127.0.0.1:$bq \
       UMBRA_COMPUTATIONS_ENDPOINT=tcp://127.0.0.1:$mp UMBRA_COMPUTATIONS_PUB_ENDPOINT=tcp://127.0.0.1:$mq \
       UMBRA_BILLING_ENDPOINT=tcp://127.0.0.1:$lp UMBRA_BILLING_PUB_ENDPOINT=tcp://127.0.0.1:$lq \
       UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=root-password-0123 \
       UMBRA_CLIENT_URL=$base
state=$dir/state
up () {
    "$umbra" up --state "$state" --listen 127.0.0.1:$gw >>"$dir/umbra.log" 2>&1 &
    pid=$!
    curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null \
        "$base/health" || fail "the platform did not come up"
}
down () {
    kill -TERM "$pid"
    local rc=0; wait "$pid" || rc=$?
    pid=
    [ $rc -eq 0 ] || fail "umbra up exited $rc on SIGTERM"
}
post () {
    curl -sf -X POST -H 'Content-Type: application/json' ${2:+-H "Authorization: Bearer $2"} \
        --data-binary "$3" "$base$1"
}
split_chain () {
    mkdir -p "$(dirname "$2")" "$(dirname "$3")"
    awk -v issuing="$2" -v root="$3" '/BEGIN CERTIFICATE/ { n++ } { print > (n == 1 ? issuing : root) }' "$1"
}
