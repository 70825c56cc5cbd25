#!/usr/bin/env bash
# certs_cli - the CLI's selftests, then `umbra certs` against a real `umbra up`, checked with
# openssl: a user issues a certificate with a key made by the service and one from a CSR made by
# openssl; list, get, ca, crl, renew; revoke as the workspace admin, refused for a member (403)
# and invisible to an outsider (404); openssl verify against the downloaded chain; REST /ca.pem
# and /crl content types; the CRL (and OCSP) list the revoked serial; no token in the log.
set -euo pipefail
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
umbra=$build/cli/umbra
dir=$(mktemp -d /tmp/umbra-certs-cli.XXXXXX)
log=$dir/umbra.log
pid=
cleanup () {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

# six distinct free ports, held open together while the kernel picks them
read -r gw ap pp cp cpp hp < <(/usr/bin/python3 -c '
import socket
held = [socket.socket() for _ in range(6)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
base=http://127.0.0.1:$gw
admin_password='root-password-0123'

UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$ap UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$pp \
UMBRA_CERTS_ENDPOINT=tcp://127.0.0.1:$cp UMBRA_CERTS_PUB_ENDPOINT=tcp://127.0.0.1:$cpp \
UMBRA_CERTS_HTTP_LISTEN=127.0.0.1:$hp \
UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=$admin_password UMBRA_LOG_LEVEL=debug \
    "$umbra" up --state "$dir/state" --listen 127.0.0.1:$gw >>"$log" 2>&1 &
pid=$!
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null "$base/health" \
    || { tail -n 40 "$log"; echo "FAIL: the platform did not come up (is certs part of umbra up?)"; exit 1; }
echo "ok   umbra up is healthy, certs included"

fail () { echo "FAIL: $*"; exit 1; }

# post PATH TOKEN JSON: prints the body; fails unless 2xx
post () {
    local args=(-s -o "$dir/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json'
                --data-binary "$3")
    [ -n "$2" ] && args+=(-H "Authorization: Bearer $2")
    local status
    status=$(curl "${args[@]}" "$base$1")
    [[ $status == 2?? ]] || fail "POST $1 -> $status: $(cat "$dir/body")"
    cat "$dir/body"
}
user () {
    post /users "" "{\"username\":\"$1\",\"password\":\"$1-password-1\"}" >/dev/null
    post /users/tokens "" "{\"username\":\"$1\",\"password\":\"$1-password-1\"}" | jq -r .access_token
}
alice=$(user alice); bob=$(user bob); carol=$(user carol)
post /workspaces "$alice" '{"name":"acme"}' >/dev/null
invitation=$(post /workspaces/acme/invitations "$alice" '{"username":"bob","role":"member"}' | jq -r .id)
post "/invitations/$invitation/accept" "$bob" '{}' >/dev/null
echo "ok   alice admin of acme, bob a member, carol outside"

export UMBRA_CLIENT_URL=$base
# run WANT WHAT TOKEN ARGS...: `umbra certs ARGS` as the token's holder; sets out and err
run () {
    local want=$1 what=$2 token=$3
    shift 3
    local rc=0
    UMBRA_CLIENT_TOKEN=$token "$umbra" certs "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    out=$(cat "$dir/out"); err=$(cat "$dir/err")
    [ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want; stdout: $out; stderr: $err"
    echo "ok   $what (exit $rc)"
}

# ---------------------------------------------------------------- issue
mkdir "$dir/one" "$dir/two" "$dir/three"
run 0 "issue with a key made by the service" "$alice" issue --workspace acme --cn svc.acme \
    --san svc.acme --san 127.0.0.1 --ttl 86400 --out "$dir/one"
serial=$out
[[ $serial =~ ^[0-9a-f]+$ ]] || fail "the serial printed is '$serial'"
[ "$(stat -c %a "$dir/one/key.pem")" = 600 ] || fail "key.pem is not mode 0600"
[ "$(openssl x509 -in "$dir/one/cert.pem" -noout -serial | cut -d= -f2 | tr A-F a-f | sed 's/^0*//')" = "$serial" ] \
    || fail "cert.pem does not hold serial $serial"
openssl x509 -in "$dir/one/cert.pem" -noout -subject | grep -q 'CN *= *svc.acme' || fail "wrong subject"
openssl x509 -in "$dir/one/cert.pem" -noout -ext subjectAltName | grep -q 'DNS:svc.acme, IP Address:127.0.0.1' \
    || fail "wrong subjectAltName"
cmp -s <(openssl pkey -in "$dir/one/key.pem" -pubout) <(openssl x509 -in "$dir/one/cert.pem" -noout -pubkey) \
    || fail "key.pem is not the key of cert.pem"
echo "ok   cert.pem, chain.pem and key.pem (0600) match"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=x \
    -keyout "$dir/csr.key" -out "$dir/req.pem" 2>/dev/null
run 0 "issue from a CSR made by openssl (a member)" "$bob" issue --workspace acme --cn x \
    --csr "$dir/req.pem" --profile client --out "$dir/two"
csr_serial=$out
[ ! -e "$dir/two/key.pem" ] || fail "a key.pem was written for a CSR"
cmp -s <(openssl pkey -in "$dir/csr.key" -pubout) <(openssl x509 -in "$dir/two/cert.pem" -noout -pubkey) \
    || fail "the certificate does not certify the CSR's key"

run 1 "existing files are never overwritten" "$alice" issue --workspace acme --cn again --out "$dir/one"
grep -q 'never overwritten' <<<"$err" || fail "no reason given: $err"
run 2 "a usage error" "$alice" issue --workspace acme
run 2 "--key-type with --csr" "$alice" issue --workspace acme --cn x --csr "$dir/req.pem" --key-type ed25519
run 1 "issue without a token" "" issue --workspace acme --cn x --out "$dir/three"
grep -q '^umbra: 401 ' <<<"$err" || fail "no 401: $err"
[ -z "$(ls "$dir/three")" ] || fail "a refused issue left files"

# ---------------------------------------------------------------- list, get, ca
run 0 "list" "$bob" list --workspace acme
grep -q "^SERIAL" <<<"$out" && grep -q "$serial" <<<"$out" && grep -q "$csr_serial" <<<"$out" \
    || fail "list: $out"
run 0 "list --status revoked (none yet)" "$bob" list --workspace acme --status revoked
[ "$(wc -l <<<"$out")" = 1 ] || fail "list --status revoked: $out"
run 0 "get" "$bob" get --workspace acme "$serial"
grep -q 'common name   svc.acme' <<<"$out" && grep -q 'status        valid' <<<"$out" || fail "get: $out"
run 1 "an outsider gets 404" "$carol" get --workspace acme "$serial"
grep -q '^umbra: 404 ' <<<"$err" || fail "carol: $err"

run 0 "ca" "" ca --out "$dir/ca.pem"
cmp -s "$dir/ca.pem" "$dir/one/chain.pem" || fail "ca differs from the chain issued"
awk '/BEGIN CERTIFICATE/ { n++ } { print > (n == 1 ? "'"$dir"'/issuing.pem" : "'"$dir"'/root.pem") }' "$dir/ca.pem"
openssl x509 -in "$dir/root.pem" -noout -subject | grep -qi root || fail "the chain does not end with the root"
for cert in one/cert.pem two/cert.pem; do
    openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/issuing.pem" "$dir/$cert" >/dev/null \
        || fail "openssl verify $cert"
done
echo "ok   openssl verify: both certificates chain to the downloaded root"

status=$(curl -s -o "$dir/rest-ca.pem" -D "$dir/headers" -w '%{http_code}' "$base/ca.pem")
[ "$status" = 200 ] && grep -qi '^content-type: application/x-pem-file' "$dir/headers" \
    && cmp -s "$dir/rest-ca.pem" "$dir/ca.pem" || fail "GET /ca.pem: $status $(cat "$dir/headers")"
echo "ok   GET /ca.pem is application/x-pem-file"

# ---------------------------------------------------------------- revoke, crl
run 1 "a member cannot revoke" "$bob" revoke --workspace acme "$serial" --reason keyCompromise
grep -q "^umbra: 403 forbidden: .*certs.revoke" <<<"$err" || fail "bob: $err"
run 1 "an outsider cannot see it to revoke" "$carol" revoke --workspace acme "$serial"
grep -q '^umbra: 404 ' <<<"$err" || fail "carol: $err"
run 0 "the admin revokes" "$alice" revoke --workspace acme "$serial" --reason keyCompromise
grep -q "revoked $serial (keyCompromise)" <<<"$out" || fail "revoke: $out"
run 1 "revoked twice" "$alice" revoke --workspace acme "$serial"
grep -q '^umbra: 409 ' <<<"$err" || fail "twice: $err"
run 0 "list --status revoked" "$bob" list --workspace acme --status revoked
grep -q "$serial" <<<"$out" || fail "not listed as revoked: $out"

upper=$(tr a-f A-F <<<"$serial")
run 0 "crl (DER)" "" crl --out "$dir/crl.der"
openssl crl -inform DER -in "$dir/crl.der" -noout -text >"$dir/crl.txt"
grep -q "Serial Number: 0*$upper\$" "$dir/crl.txt" || fail "the CRL does not list $serial: $(cat "$dir/crl.txt")"
grep -q "Key Compromise" "$dir/crl.txt" || fail "the CRL has no reason"
grep -q "Serial Number: 0*$(tr a-f A-F <<<"$csr_serial")\$" "$dir/crl.txt" && fail "the CRL lists a valid certificate"
openssl crl -inform DER -in "$dir/crl.der" -CAfile "$dir/ca.pem" -noout 2>&1 | grep -q 'verify OK' \
    || fail "the CRL's signature does not verify"
echo "ok   the CRL lists $serial (keyCompromise), signed by the CA"
run 0 "crl --pem" "" crl --pem
grep -q -- '-----BEGIN X509 CRL-----' <<<"$out" || fail "crl --pem: $out"

status=$(curl -s -o "$dir/rest.crl" -D "$dir/headers" -w '%{http_code}' "$base/crl")
[ "$status" = 200 ] && grep -qi '^content-type: application/pkix-crl' "$dir/headers" || fail "GET /crl: $status"
openssl crl -inform DER -in "$dir/rest.crl" -noout || fail "GET /crl is not DER"
status=$(curl -s -o "$dir/rest-crl.pem" -D "$dir/headers" -w '%{http_code}' "$base/crl?format=pem")
[ "$status" = 200 ] && grep -qi '^content-type: application/x-pem-file' "$dir/headers" || fail "GET /crl?format=pem: $status"
openssl crl -in "$dir/rest-crl.pem" -noout || fail "GET /crl?format=pem is not PEM"
status=$(curl -s -o "$dir/body" -D "$dir/headers" -w '%{http_code}' "$base/crl?format=txt")
[ "$status" = 400 ] && grep -qi '^content-type: application/json' "$dir/headers" || fail "GET /crl?format=txt: $status"
echo "ok   GET /crl is application/pkix-crl, ?format=pem application/x-pem-file, errors JSON"

# The OCSP responder agrees
openssl ocsp -issuer "$dir/issuing.pem" -cert "$dir/one/cert.pem" -cert "$dir/two/cert.pem" \
    -url "http://127.0.0.1:$hp/ocsp" -CAfile "$dir/root.pem" >"$dir/ocsp.txt" 2>&1 \
    || fail "openssl ocsp: $(cat "$dir/ocsp.txt")"
grep -q "one/cert.pem: revoked" "$dir/ocsp.txt" && grep -q "two/cert.pem: good" "$dir/ocsp.txt" \
    || fail "OCSP: $(cat "$dir/ocsp.txt")"
echo "ok   OCSP: revoked and good"

# ---------------------------------------------------------------- renew
run 0 "renew" "$bob" renew --workspace acme "$csr_serial" --out "$dir/three"
[ -n "$out" ] && [ "$out" != "$csr_serial" ] || fail "renew printed '$out'"
openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/issuing.pem" "$dir/three/cert.pem" >/dev/null \
    || fail "the renewed certificate does not verify"
run 1 "a revoked certificate is not renewed" "$alice" renew --workspace acme "$serial" --out "$dir/three"

# ---------------------------------------------------------------- the end
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ $rc -eq 0 ] || fail "umbra up exited $rc on SIGTERM"
for secret in "$alice" "$bob" "$carol" "$admin_password" "$(sed -n 2p "$dir/one/key.pem")"; do
    grep -qF -- "$secret" "$log" && fail "a secret reached the log"
done
echo "ok   no token, password or private key in the log"
echo "certs_cli passed"
