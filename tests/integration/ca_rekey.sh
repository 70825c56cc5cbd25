#!/usr/bin/env bash
# ca_rekey.sh - replacing the CA as docs/operations.md ("Rotating keys", "The CA") says, against a
# real `umbra up`: a certificate issued under the first CA; the platform stopped, the CA moved
# aside, `umbra init` making a new one (and keeping every mesh identity), the platform started:
# every service is healthy on mesh certificates of the new CA, GET /ca.pem is the new chain, the
# old certificate no longer verifies against it, `umbra certs renew` re-issues it under the new
# CA (openssl verify, OCSP good), and users, workspaces and certificates records are kept.
set -euo pipefail
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
umbra=$build/cli/umbra
dir=$(mktemp -d /tmp/umbra-ca-rekey.XXXXXX)
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
split_chain () {  # CHAIN.pem DIR: DIR/issuing.pem and DIR/root.pem
    mkdir -p "$2"
    awk '/BEGIN CERTIFICATE/ { n++ } { print > (n == 1 ? "'"$2"'/issuing.pem" : "'"$2"'/root.pem") }' "$1"
}

up
post /users "" '{"username":"alice","password":"alice-password-1"}' >/dev/null
token=$(post /users/tokens "" '{"username":"alice","password":"alice-password-1"}' | jq -r .access_token)
post /workspaces "$token" '{"name":"acme"}' >/dev/null
export UMBRA_CLIENT_TOKEN=$token
mkdir -p "$dir/old" "$dir/new"
serial=$("$umbra" certs issue --workspace acme --cn svc.acme.test --out "$dir/old")
curl -sf "$base/ca.pem" -o "$dir/old-chain.pem"
split_chain "$dir/old-chain.pem" "$dir/old-ca"
openssl verify -CAfile "$dir/old-ca/root.pem" -untrusted "$dir/old-ca/issuing.pem" \
    "$dir/old/cert.pem" >/dev/null || fail "the first certificate does not verify"
ok "a certificate ($serial) issued under the first CA"

down
keys_before=$(cat "$state"/keys/*.pub | sha256sum)
mv "$state/certs/ca" "$dir/ca.old"
"$umbra" init --state "$state" >"$dir/init.txt" || fail "umbra init: $(cat "$dir/init.txt")"
grep -q "^CA .*(made; root SHA-256 " "$dir/init.txt" || fail "umbra init made no CA: $(cat "$dir/init.txt")"
[ "$(grep -c '(kept,' "$dir/init.txt")" = 6 ] || fail "umbra init did not keep the identities"
[ "$(cat "$state"/keys/*.pub | sha256sum)" = "$keys_before" ] || fail "the mesh keys changed"
ok "stopped; the CA moved aside; umbra init made a new one and kept the six mesh identities"

up
"$umbra" status --url "$base" >"$dir/status.txt" || fail "not every service is up: $(cat "$dir/status.txt")"
curl -sf "$base/ca.pem" -o "$dir/new-chain.pem"
split_chain "$dir/new-chain.pem" "$dir/new-ca"
cmp -s "$dir/old-ca/root.pem" "$dir/new-ca/root.pem" && fail "GET /ca.pem still gives the old root"
grep -q "$(openssl x509 -in "$dir/new-ca/root.pem" -noout -fingerprint -sha256 | cut -d= -f2 |
          tr -d : | tr A-F a-f)" "$dir/init.txt" || fail "the root served is not the one umbra init made"
ok "started on the new CA: every service up (mesh certificates from the new CA), /ca.pem the new chain"

openssl verify -CAfile "$dir/new-ca/root.pem" -untrusted "$dir/new-ca/issuing.pem" \
    "$dir/old/cert.pem" >/dev/null 2>&1 && fail "the old certificate verifies against the new CA"
"$umbra" certs get --workspace acme "$serial" | grep -q 'status        valid' \
    || fail "the certificate's record is gone"
renewed=$("$umbra" certs renew --workspace acme "$serial" --out "$dir/new")
openssl verify -CAfile "$dir/new-ca/root.pem" -untrusted "$dir/new-ca/issuing.pem" \
    "$dir/new/cert.pem" >/dev/null || fail "the renewed certificate does not verify"
openssl ocsp -issuer "$dir/new-ca/issuing.pem" -cert "$dir/new/cert.pem" \
    -url "http://127.0.0.1:$hp/ocsp" -CAfile "$dir/new-ca/root.pem" >"$dir/ocsp.txt" 2>&1 \
    || fail "openssl ocsp: $(cat "$dir/ocsp.txt")"
grep -q "new/cert.pem: good" "$dir/ocsp.txt" || fail "OCSP: $(cat "$dir/ocsp.txt")"
ok "the old certificate no longer verifies; renewed ($renewed) under the new CA it does, and OCSP says good"

again=$(post /users/tokens "" '{"username":"alice","password":"alice-password-1"}' | jq -r .access_token)
curl -sf -H "Authorization: Bearer $again" "$base/workspaces/acme" >/dev/null || fail "the workspace is gone"
ok "users and workspaces are as they were"
down
echo "ca_rekey: all $checks checks passed"
