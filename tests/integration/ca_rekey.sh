#!/usr/bin/env bash
# ca_rekey.sh - replacing the CA as docs/operations.md ("Rotating keys", "The whole CA") says, against a
# real `umbra up`: a certificate issued under the first CA; the platform stopped, the CA moved
# aside, `umbra init` making a new one (and keeping every mesh identity), the platform started:
# every service is healthy on mesh certificates of the new CA, GET /ca.pem is the new chain, the
# old certificate no longer verifies against it, `umbra certs renew` re-issues it under the new
# CA (openssl verify, OCSP good), and users, workspaces and certificates records are kept.
set -euo pipefail
. "$(dirname "$0")/lib/umbra_up.sh" ca-rekey

up
post /users "" '{"username":"alice","password":"alice-password-1"}' >/dev/null
token=$(post /users/tokens "" '{"username":"alice","password":"alice-password-1"}' | jq -r .access_token)
post /workspaces "$token" '{"name":"acme"}' >/dev/null
export UMBRA_CLIENT_TOKEN=$token
mkdir -p "$dir/old" "$dir/new"
serial=$("$umbra" certs issue --workspace acme --cn svc.acme.test --out "$dir/old")
curl -sf "$base/ca.pem" -o "$dir/old-chain.pem"
split_chain "$dir/old-chain.pem" "$dir/old-ca/issuing.pem" "$dir/old-ca/root.pem"
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
split_chain "$dir/new-chain.pem" "$dir/new-ca/issuing.pem" "$dir/new-ca/root.pem"
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
