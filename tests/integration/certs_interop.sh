#!/usr/bin/env bash
# certs_interop - the certs service against OpenSSL's own tools, on a real `umbra up`: certificates
# issued and revoked through REST, then `openssl ocsp` (POST, and GET with curl) says good, then
# revoked with its reason, and verifies every response; `openssl verify -crl_check` refuses the
# revoked certificate with the CRL and accepts another; `openssl x509` shows the AIA OCSP URI and
# the CRL distribution point; a garbage OCSP request gets malformedRequest.
set -euo pipefail
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
umbra=$build/cli/umbra
work=$(mktemp -d /tmp/umbra-certs.XXXXXX)
log=$work/umbra.log
pid=
cleanup () {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

fail () {
    echo "FAIL: $*"
    echo "---- last lines of the platform's log"
    tail -n 30 "$log" 2>/dev/null || true
    exit 1
}
ok () { echo "ok   $*"; }

# six distinct free ports, held open together while the kernel picks them
read -r gw ap pp cp cq hp < <(/usr/bin/python3 -c '
import socket
held = [socket.socket() for _ in range(6)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
base=http://127.0.0.1:$gw
ocsp=http://127.0.0.1:$hp

UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$ap UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$pp \
UMBRA_CERTS_ENDPOINT=tcp://127.0.0.1:$cp UMBRA_CERTS_PUB_ENDPOINT=tcp://127.0.0.1:$cq \
UMBRA_CERTS_HTTP_LISTEN=127.0.0.1:$hp UMBRA_LOG_LEVEL=debug \
UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=root-password-0123 \
    "$umbra" up --state "$work/state" --listen 127.0.0.1:$gw >>"$log" 2>&1 &
pid=$!
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null \
    "$base/health" || fail "the platform did not come up"
grep -q "certs OCSP http://127.0.0.1:$hp/ocsp" "$log" || fail "'umbra is up' does not name the OCSP URL"
ok "umbra up: gateway $base, OCSP $ocsp/ocsp"

# req METHOD PATH [TOKEN] [JSON]: REST through the gateway; sets status and body
req () {
    local method=$1 path=$2 token=${3:-} data=${4:-}
    local args=(-s -o "$work/body" -w '%{http_code}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    status=$(curl "${args[@]}" "$base$path")
    body=$(cat "$work/body")
}
expect () {
    [ "$status" = "$1" ] || fail "$2: expected $1, got $status: $body"
    ok "$2 ($status)"
}

req POST /users "" '{"username":"alice","password":"alice-password-1"}';      expect 201 "register alice"
req POST /users/tokens "" '{"username":"alice","password":"alice-password-1"}'; expect 201 "alice logs in"
alice=$(jq -r .access_token <<<"$body")
req POST /workspaces "$alice" '{"name":"acme"}';                               expect 201 "alice creates acme"

# ---- two certificates, keys made by the service
req POST /workspaces/acme/certs "$alice" '{"common_name":"www.acme.test","sans":["www.acme.test","127.0.0.1"],"ttl":3600}'
expect 201 "issue www.acme.test"
jq -r .certificate <<<"$body" >"$work/leaf.pem"
jq -r .private_key <<<"$body" >"$work/leaf.key"
serial=$(jq -r .serial <<<"$body")
[ "$(jq -r .status <<<"$body")" = valid ] || fail "a new certificate is not valid: $body"
req POST /workspaces/acme/certs "$alice" '{"common_name":"api.acme.test","sans":["api.acme.test"]}'
expect 201 "issue api.acme.test"
jq -r .certificate <<<"$body" >"$work/other.pem"

# From a CSR made by openssl: the answer has no private key, the certificate has the CSR's key
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/csr.key" \
    -subj /CN=csr.acme.test -out "$work/csr.pem" 2>/dev/null
req POST /workspaces/acme/certs "$alice" "$(jq -n --rawfile csr "$work/csr.pem" \
    '{common_name:"csr.acme.test",sans:["csr.acme.test"],csr:$csr}')"
expect 201 "issue from an openssl CSR"
[ "$(jq -r 'has("private_key")' <<<"$body")" = false ] || fail "a CSR's answer carries a private key"
jq -r .certificate <<<"$body" >"$work/csr-cert.pem"
[ "$(openssl x509 -in "$work/csr-cert.pem" -noout -pubkey)" = "$(openssl pkey -in "$work/csr.key" -pubout)" ] \
    || fail "the certificate does not carry the CSR's key"
ok "the certificate carries the CSR's public key"

# The CA's files, from the certs service's own HTTP port and through the gateway
curl -sf -o "$work/chain.pem" "$ocsp/ca.pem" || fail "GET $ocsp/ca.pem"
awk 'n < 1 { print } /-----END CERTIFICATE-----/ { n++ }' "$work/chain.pem" >"$work/issuing.pem"
awk 'n >= 1 { print } /-----END CERTIFICATE-----/ { n++ }' "$work/chain.pem" >"$work/root.pem"
grep -q "BEGIN CERTIFICATE" "$work/root.pem" || fail "ca.pem is not the issuing CA followed by the root"
curl -sf -o "$work/chain-gw.pem" "$base/ca.pem" || fail "GET $base/ca.pem"
cmp -s "$work/chain.pem" "$work/chain-gw.pem" || fail "the gateway's /ca.pem differs"
openssl verify -CAfile "$work/root.pem" -untrusted "$work/issuing.pem" "$work/leaf.pem" >/dev/null \
    || fail "the leaf does not chain to the root"
openssl x509 -in "$work/leaf.pem" -noout -pubkey >"$work/leaf.pub"
openssl pkey -in "$work/leaf.key" -pubout | cmp -s - "$work/leaf.pub" || fail "the private key is not the leaf's"
ok "ca.pem is issuing + root; the leaf chains to the root and matches its private key"

# ---- what openssl x509 shows
text=$(openssl x509 -in "$work/leaf.pem" -noout -text)
grep -q "OCSP - URI:$ocsp/ocsp" <<<"$text" || fail "no AIA OCSP URI $ocsp/ocsp in the leaf: $text"
grep -A3 "X509v3 CRL Distribution Points" <<<"$text" | grep -q "URI:$ocsp/crl" \
    || fail "no CRL distribution point $ocsp/crl in the leaf"
grep -q "DNS:www.acme.test, IP Address:127.0.0.1" <<<"$text" || fail "SANs missing: $text"
ok "openssl x509: AIA OCSP URI $ocsp/ocsp and CRL distribution point $ocsp/crl"

# ---- OCSP: good
# ocsp_post CERT: openssl ocsp over POST with a nonce; the output (stdout and stderr) in $answer
ocsp_post () {
    answer=$(openssl ocsp -issuer "$work/issuing.pem" -cert "$1" -url "$ocsp/ocsp" \
             -CAfile "$work/chain.pem" -resp_text 2>&1) || fail "openssl ocsp failed: $answer"
    grep -q "Response verify OK" <<<"$answer" || fail "the OCSP response does not verify: $answer"
}
# ocsp_get CERT: the request in the URL (base64, URL-encoded), fetched by curl, read by openssl
ocsp_get () {
    openssl ocsp -issuer "$work/issuing.pem" -cert "$1" -no_nonce -reqout "$work/req.der" >/dev/null 2>&1
    local encoded
    encoded=$(base64 -w0 "$work/req.der" | /usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
    local code
    code=$(curl -s -o "$work/resp.der" -w '%{http_code}' -D "$work/resp.head" "$ocsp/ocsp/$encoded")
    [ "$code" = 200 ] || fail "GET /ocsp/...: HTTP $code"
    grep -qi '^content-type: application/ocsp-response' "$work/resp.head" || fail "GET /ocsp: wrong Content-Type"
    answer=$(openssl ocsp -respin "$work/resp.der" -issuer "$work/issuing.pem" -cert "$1" \
             -CAfile "$work/chain.pem" -resp_text 2>&1) || fail "openssl ocsp -respin failed: $answer"
    grep -q "Response verify OK" <<<"$answer" || fail "the GET response does not verify: $answer"
}

ocsp_post "$work/leaf.pem"
grep -q "leaf.pem: good" <<<"$answer" || fail "POST: expected good: $answer"
grep -q "Responder Id:" <<<"$answer" && grep -q "umbra OCSP signer" <<<"$answer" \
    || fail "the response is not signed by the delegated OCSP signer: $answer"
ok "openssl ocsp (POST, nonce): good, Response verify OK, signed by the OCSP signer"
ocsp_get "$work/leaf.pem"
grep -q "leaf.pem: good" <<<"$answer" || fail "GET: expected good: $answer"
ok "OCSP over GET (curl, URL-encoded base64): good, Response verify OK"
# URL-safe base64 without padding is accepted too
openssl ocsp -issuer "$work/issuing.pem" -cert "$work/leaf.pem" -no_nonce -reqout "$work/req.der" >/dev/null 2>&1
urlsafe=$(base64 -w0 "$work/req.der" | tr '+/' '-_' | tr -d '=')
code=$(curl -s -o "$work/resp2.der" -w '%{http_code}' "$ocsp/ocsp/$urlsafe")
[ "$code" = 200 ] && openssl ocsp -respin "$work/resp2.der" -issuer "$work/issuing.pem" -cert "$work/leaf.pem" \
    -CAfile "$work/chain.pem" 2>&1 | grep -q "leaf.pem: good" || fail "URL-safe GET: $code"
ok "OCSP over GET with URL-safe base64, no padding: good"

# ---- revoke through REST
req POST "/workspaces/acme/certs/$serial/revoke" "$alice" '{"reason":"keyCompromise"}'
expect 200 "revoke www.acme.test (keyCompromise)"
[ "$(jq -r .status <<<"$body")" = revoked ] && [ "$(jq -r .reason <<<"$body")" = keyCompromise ] \
    || fail "the revoked certificate reads: $body"
req POST "/workspaces/acme/certs/$serial/revoke" "$alice" '{"reason":"keyCompromise"}'
expect 409 "revoking twice"

ocsp_post "$work/leaf.pem"
grep -q "leaf.pem: revoked" <<<"$answer" || fail "POST after revocation: expected revoked: $answer"
grep -q "Reason: keyCompromise" <<<"$answer" || fail "no 'Reason: keyCompromise': $answer"
echo "$answer" | grep -E "leaf.pem|Reason|verify|Update|Cert Status" | sed "s/^/     /"
ok "openssl ocsp (POST): revoked, Reason: keyCompromise, Response verify OK"
ocsp_get "$work/leaf.pem"
grep -q "leaf.pem: revoked" <<<"$answer" && grep -q "Reason: keyCompromise" <<<"$answer" \
    || fail "GET after revocation: $answer"
ok "OCSP over GET: revoked, Reason: keyCompromise (no stale cached 'good')"
ocsp_post "$work/other.pem"
grep -q "other.pem: good" <<<"$answer" || fail "the other certificate: $answer"
ok "the other certificate is still good"

# ---- CRL
curl -sf -o "$work/crl.der" "$ocsp/crl" || fail "GET $ocsp/crl"
openssl crl -inform DER -in "$work/crl.der" -out "$work/crl.pem" 2>/dev/null || fail "the CRL is not DER"
curl -sf -o "$work/crl-http.pem" "$ocsp/crl.pem" || fail "GET $ocsp/crl.pem"
cmp -s "$work/crl.pem" "$work/crl-http.pem" || fail "/crl.pem is not /crl in PEM"
curl -sf -o "$work/crl-gw.der" "$base/crl" || fail "GET $base/crl"
cmp -s "$work/crl.der" "$work/crl-gw.der" || fail "the gateway's /crl differs"
openssl crl -in "$work/crl.pem" -noout -CAfile "$work/chain.pem" 2>&1 | grep -q "verify OK" \
    || fail "the CRL's signature does not verify"
upper=$(tr a-f A-F <<<"$serial")
openssl crl -in "$work/crl.pem" -noout -text | grep -q "Serial Number: 0*$upper" \
    || fail "the CRL does not list $serial"
rc=0
verify=$(openssl verify -crl_check -CRLfile "$work/crl.pem" -CAfile "$work/root.pem" \
         -untrusted "$work/issuing.pem" "$work/leaf.pem" 2>&1) || rc=$?
[ $rc -ne 0 ] && grep -q "certificate revoked" <<<"$verify" || fail "openssl verify accepted the revoked certificate: $verify"
ok "openssl verify -crl_check: the revoked certificate is refused (certificate revoked)"
openssl verify -crl_check -CRLfile "$work/crl.pem" -CAfile "$work/root.pem" \
    -untrusted "$work/issuing.pem" "$work/other.pem" >/dev/null 2>&1 \
    || fail "openssl verify -crl_check refused a good certificate"
ok "openssl verify -crl_check: another certificate is accepted"

# ---- a garbage request gets malformedRequest (HTTP 200)
code=$(curl -s -o "$work/garbage.der" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
       --data-binary 'this is not DER' "$ocsp/ocsp")
[ "$code" = 200 ] || fail "a garbage POST got HTTP $code"
answer=$(openssl ocsp -respin "$work/garbage.der" -resp_text -noverify 2>&1 || true)
grep -qi "malformedrequest" <<<"$answer" || fail "a garbage request is not answered malformedRequest: $answer"
openssl asn1parse -inform DER -in "$work/garbage.der" | grep -q "ENUMERATED *:01" \
    || fail "responseStatus is not 1"
ok "a garbage POST gets OCSP malformedRequest (responseStatus 1) with HTTP 200"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
       --data-binary @<(head -c 70000 /dev/zero) "$ocsp/ocsp")
[ "$code" = 413 ] || fail "a 70000-byte OCSP request got HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$ocsp/nowhere")
[ "$code" = 404 ] || fail "an unknown path got HTTP $code"
ok "over 64 KiB: 413; unknown path: 404"

# ---- mesh identities, for platform administrators
req POST /users/tokens "" '{"username":"root","password":"root-password-0123"}'; expect 201 "root logs in"
root=$(jq -r .access_token <<<"$body")
req GET /mesh/certs "$alice";                                                  expect 403 "alice lists mesh certificates"
req GET /mesh/certs "$root";                                                   expect 200 "root lists mesh certificates"
[ "$(jq -r '[.items[] | select(.name == "certs")] | length' <<<"$body")" = 1 ] \
    || fail "the certs service's own mesh certificate is not listed: $body"

metrics=$(curl -sf "$base/metrics") || fail "GET /metrics"
grep -q 'umbra_ocsp_responses_total{service="certs",status="revoked"}' <<<"$metrics" \
    || fail "no OCSP metrics in /metrics"
ok "OCSP metrics reach /metrics"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ $rc -eq 0 ] || fail "umbra up exited $rc on SIGTERM"
ok "SIGTERM: umbra up exits 0"
echo "certs_interop passed"
