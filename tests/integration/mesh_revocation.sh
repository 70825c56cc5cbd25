#!/usr/bin/env bash
# mesh_revocation - certified mesh identities: every service of `umbra up` holds a mesh certificate
# for its CURVE key; when a platform administrator revokes the gateway's, the other services refuse
# the gateway within the documented bound (mesh.trust_refresh_ms plus a round trip), on its open
# connections too, and the refusal survives. Also: only platform administrators may revoke.
set -euo pipefail
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
state=$(mktemp -d /tmp/umbra-meshrev.XXXXXX)
log=$state/umbra.log
pid=
cleanup () {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$state"
}
trap cleanup EXIT
read -r gw ap pp cp cq hp < <(/usr/bin/python3 -c '
import socket
held = [socket.socket() for _ in range(6)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
base=http://127.0.0.1:$gw
UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$ap UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$pp \
UMBRA_CERTS_ENDPOINT=tcp://127.0.0.1:$cp UMBRA_CERTS_PUB_ENDPOINT=tcp://127.0.0.1:$cq \
UMBRA_CERTS_HTTP_LISTEN=127.0.0.1:$hp UMBRA_MESH_TRUST_REFRESH_MS=500 \
UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=root-password-1 \
    "$build/cli/umbra" up --state "$state/data" --listen 127.0.0.1:$gw >"$log" 2>&1 &
pid=$!
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null \
    "$base/health" || { cat "$log"; echo "FAIL: platform did not come up"; exit 1; }

login () {
    curl -sf -H 'Content-Type: application/json' -d "{\"username\":\"$1\",\"password\":\"$2\"}" \
        "$base/users/tokens" | jq -r .access_token
}
root=$(login root root-password-1)
curl -sf -H 'Content-Type: application/json' -d '{"username":"mallory","password":"mallory-password"}' \
    "$base/users" >/dev/null
mallory=$(login mallory mallory-password)

# Every identity of the process gets certified once certs answers
serial=
for _ in $(seq 1 100); do
    serial=$(curl -sf -H "Authorization: Bearer $root" "$base/mesh/certs" \
             | jq -r '[.items[] | select(.name == "gateway" and .status == "valid")][0].serial // empty')
    [ -n "$serial" ] && break
    curl -s -o /dev/null --max-time 0.1 "$base/health" || true      # a paced wait on the platform
done
[ -n "$serial" ] || { echo "FAIL: the gateway never got a mesh certificate"; exit 1; }
names=$(curl -sf -H "Authorization: Bearer $root" "$base/mesh/certs" | jq -r '[.items[].name] | unique | join(",")')
[ "$names" = "auth,backends,billing,certs,computations,gateway" ] || { echo "FAIL: mesh certificates for '$names'"; exit 1; }
echo "ok   auth, backends, certs and gateway hold mesh certificates"

code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $mallory" \
       -H 'Content-Type: application/json' -d '{"reason":"keyCompromise"}' "$base/mesh/certs/$serial/revoke")
[ "$code" = 403 ] || { echo "FAIL: a non-admin revoked a mesh certificate ($code)"; exit 1; }
echo "ok   only platform administrators revoke mesh certificates (403)"

code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $root" "$base/users/me")
[ "$code" = 200 ] || { echo "FAIL: before revocation /users/me gave $code"; exit 1; }
code=$(curl -s -o "$state/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $root" \
       -H 'Content-Type: application/json' -d '{"reason":"keyCompromise"}' "$base/mesh/certs/$serial/revoke")
[ "$code" = 200 ] || { echo "FAIL: revoke answered $code $(cat "$state/body")"; exit 1; }
started=$(date +%s%N)

# From now on auth refuses the gateway: requests through it fail
refused=
for _ in $(seq 1 200); do
    code=$(curl -s -o "$state/body" -w '%{http_code}' -H "Authorization: Bearer $root" "$base/users/me")
    if [ "$code" != 200 ]; then refused=$code; break; fi
    curl -s -o /dev/null --max-time 0.05 "http://127.0.0.1:$hp/ca.pem" || true   # paced
done
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
[ -n "$refused" ] || { echo "FAIL: the revoked gateway was still served"; exit 1; }
[ "$refused" = 503 ] || { echo "FAIL: users must see 503 (the platform's fault), got $refused"; exit 1; }
echo "ok   the revoked gateway is refused by auth after ${elapsed_ms} ms (HTTP $refused: $(jq -r .error.message "$state/body"))"
[ "$elapsed_ms" -lt 10000 ] || { echo "FAIL: refusal took ${elapsed_ms} ms, over the documented bound"; exit 1; }
grep -q "revoked" "$log" || { echo "FAIL: the revocation was not logged"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $root" "$base/users/me")
[ "$code" != 200 ] || { echo "FAIL: the refusal did not last"; exit 1; }
echo "ok   the refusal lasts"

kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=
[ $rc -eq 0 ] || { echo "FAIL: umbra up exited $rc"; exit 1; }
echo "mesh revocation passed"
