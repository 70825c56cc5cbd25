#!/usr/bin/env bash
# ca_rotate.sh - rolling the issuing CA over as docs/operations.md ("The issuing CA") says, against
# a real `umbra up` and OpenSSL's own tools: a certificate issued under the first issuing CA; the
# platform stopped, `umbra init --rotate-issuer`, started: a second certificate comes from the new
# issuing CA under the same root; both verify (`openssl verify`), `openssl ocsp` says good for
# each, signed for its own issuer, and unknown for a serial asked of the other issuer; the first
# certificate revoked: OCSP says revoked, and the CRL its certificate names (/crl, the first
# issuer's) lists it and verifies, while the new issuer's CRL (/crl/<serial>, named in the new
# certificate) does not list it; GET /ca lists both issuers; then a third issuing CA made while the
# platform runs (`umbra certs rotate-issuer`, platform administrators only) issues at once, OCSP and
# its CRL answer for it with no restart; all of it again after a restart.
set -euo pipefail
. "$(dirname "$0")/lib/umbra_up.sh" ca-rotate
# ocsp NAME CERT ISSUER: openssl ocsp's verdict line for CERT asked of ISSUER (verified)
ocsp () {
    openssl ocsp -issuer "$3" -cert "$2" -url "$(openssl x509 -in "$2" -noout -ocsp_uri)" \
        -CAfile "$dir/root.pem" >"$dir/ocsp-$1.txt" 2>&1 || fail "openssl ocsp ($1): $(cat "$dir/ocsp-$1.txt")"
    grep -q "^Response verify OK" "$dir/ocsp-$1.txt" || fail "OCSP response ($1) not verified: $(cat "$dir/ocsp-$1.txt")"
    sed -n "s|^$2: ||p" "$dir/ocsp-$1.txt"
}
# crl_of CERT OUT: fetches the CRL CERT names into OUT (DER) and prints its URL
crl_of () {
    local url
    url=$(openssl x509 -in "$1" -noout -ext crlDistributionPoints | sed -n 's/^ *URI://p')
    [ -n "$url" ] || fail "$1 names no CRL"
    curl -sf "$url" -o "$2" || fail "GET $url"
    echo "$url"
}
serial_of () { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

up
post /users "" '{"username":"alice","password":"alice-password-1"}' >/dev/null
token=$(post /users/tokens "" '{"username":"alice","password":"alice-password-1"}' | jq -r .access_token)
post /workspaces "$token" '{"name":"acme"}' >/dev/null
export UMBRA_CLIENT_TOKEN=$token
mkdir -p "$dir/a" "$dir/b" "$dir/c" "$dir/d"
first=$("$umbra" certs issue --workspace acme --cn a.acme.test --out "$dir/a")
curl -sf "$base/ca.pem" -o "$dir/chain-1.pem"
split_chain "$dir/chain-1.pem" "$dir/issuing-1.pem" "$dir/root.pem"
openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/issuing-1.pem" "$dir/a/cert.pem" >/dev/null \
    || fail "the first certificate does not verify"
ok "certificate $first issued under the first issuing CA"

down
"$umbra" init --state "$state" --rotate-issuer >"$dir/rotate.txt" 2>&1 \
    || fail "umbra init --rotate-issuer: $(cat "$dir/rotate.txt")"
new_id=$(sed -n 's/^issuing CA \([0-9a-f]*\)  (made, issues;.*/\1/p' "$dir/rotate.txt")
old_id=$(sed -n 's/^issuing CA \([0-9a-f]*\)  (kept, answers for what it issued;.*/\1/p' "$dir/rotate.txt")
[ -n "$new_id" ] && [ -n "$old_id" ] || fail "umbra init --rotate-issuer said: $(cat "$dir/rotate.txt")"
[ "$old_id" = "$(serial_of "$dir/issuing-1.pem" | tr A-F a-f | sed 's/^0*//')" ] \
    || fail "the issuer kept ($old_id) is not the first one"
ok "umbra init --rotate-issuer: issuing CA $new_id issues from now on; $old_id answers for what it issued"

up
"$umbra" status --url "$base" >"$dir/status.txt" || fail "not every service is up: $(cat "$dir/status.txt")"
second=$("$umbra" certs issue --workspace acme --cn b.acme.test --out "$dir/b")
curl -sf "$base/ca.pem" -o "$dir/chain-2.pem"
split_chain "$dir/chain-2.pem" "$dir/issuing-2.pem" "$dir/root-2.pem"
cmp -s "$dir/root.pem" "$dir/root-2.pem" || fail "the root changed"
cmp -s "$dir/issuing-1.pem" "$dir/issuing-2.pem" && fail "GET /ca.pem still gives the first issuing CA"
openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/issuing-2.pem" "$dir/b/cert.pem" >/dev/null \
    || fail "the new certificate does not verify under the new issuing CA"
openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/issuing-1.pem" "$dir/a/cert.pem" >/dev/null \
    || fail "the first certificate no longer verifies"
openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/issuing-1.pem" "$dir/b/cert.pem" >/dev/null 2>&1 \
    && fail "the new certificate verifies under the first issuing CA"
"$umbra" certs get --workspace acme "$first" --json | jq -e --arg id "$old_id" '.issuer == $id' >/dev/null \
    || fail "certificate $first does not name issuer $old_id"
"$umbra" certs get --workspace acme "$second" --json | jq -e --arg id "$new_id" '.issuer == $id' >/dev/null \
    || fail "certificate $second does not name issuer $new_id"
ok "started: certificate $second issued by $new_id under the same root; both verify, each under its own issuer"

[ "$(ocsp a "$dir/a/cert.pem" "$dir/issuing-1.pem")" = good ] || fail "OCSP for the first: $(cat "$dir/ocsp-a.txt")"
[ "$(ocsp b "$dir/b/cert.pem" "$dir/issuing-2.pem")" = good ] || fail "OCSP for the second: $(cat "$dir/ocsp-b.txt")"
# the first certificate's serial, asked of the new issuer: that issuer never issued it
openssl ocsp -issuer "$dir/issuing-2.pem" -serial "0x$(serial_of "$dir/a/cert.pem")" \
    -url "$(openssl x509 -in "$dir/a/cert.pem" -noout -ocsp_uri)" -CAfile "$dir/root.pem" \
    >"$dir/ocsp-cross.txt" 2>&1 || fail "openssl ocsp (cross): $(cat "$dir/ocsp-cross.txt")"
grep -q ": unknown" "$dir/ocsp-cross.txt" || fail "a serial asked of the other issuer: $(cat "$dir/ocsp-cross.txt")"
ok "OCSP: good for each, signed for its own issuer (openssl verifies); the first's serial is unknown to the new issuer"

"$umbra" certs revoke --workspace acme "$first" --reason keyCompromise >/dev/null
[ "$(ocsp a2 "$dir/a/cert.pem" "$dir/issuing-1.pem")" = revoked ] || fail "OCSP after revocation: $(cat "$dir/ocsp-a2.txt")"
[ "$(ocsp b2 "$dir/b/cert.pem" "$dir/issuing-2.pem")" = good ] || fail "OCSP for the second: $(cat "$dir/ocsp-b2.txt")"
url_a=$(crl_of "$dir/a/cert.pem" "$dir/crl-a.der")
url_b=$(crl_of "$dir/b/cert.pem" "$dir/crl-b.der")
[ "$url_a" = "http://127.0.0.1:$hp/crl" ] || fail "the first certificate's CRL is $url_a"
[ "$url_b" = "http://127.0.0.1:$hp/crl/$new_id" ] || fail "the new certificate's CRL is $url_b"
cat "$dir/issuing-1.pem" "$dir/root.pem" >"$dir/ca-1.pem"
cat "$dir/issuing-2.pem" "$dir/root.pem" >"$dir/ca-2.pem"
openssl crl -inform DER -in "$dir/crl-a.der" -CAfile "$dir/ca-1.pem" -noout 2>&1 | grep -q "verify OK" \
    || fail "the first issuer's CRL does not verify"
openssl crl -inform DER -in "$dir/crl-b.der" -CAfile "$dir/ca-2.pem" -noout 2>&1 | grep -q "verify OK" \
    || fail "the new issuer's CRL does not verify"
revoked=$(serial_of "$dir/a/cert.pem")
openssl crl -inform DER -in "$dir/crl-a.der" -noout -text | grep -qi "Serial Number: *$revoked" \
    || fail "the first issuer's CRL does not list $revoked"
openssl crl -inform DER -in "$dir/crl-b.der" -noout -text | grep -qi "Serial Number: *$revoked" \
    && fail "the new issuer's CRL lists $revoked"
# openssl verify with CRL checking: the revoked one is refused, the other accepted
openssl crl -inform DER -in "$dir/crl-a.der" -out "$dir/crl-a.pem"
openssl crl -inform DER -in "$dir/crl-b.der" -out "$dir/crl-b.pem"
openssl verify -crl_check -CAfile "$dir/root.pem" -untrusted "$dir/issuing-2.pem" \
    -CRLfile "$dir/crl-b.pem" "$dir/b/cert.pem" >/dev/null || fail "the new certificate fails the CRL check"
openssl verify -crl_check -CAfile "$dir/root.pem" -untrusted "$dir/issuing-1.pem" \
    -CRLfile "$dir/crl-a.pem" "$dir/a/cert.pem" >/dev/null 2>&1 && fail "the revoked certificate passes the CRL check"
ok "revoked: OCSP says so; the CRL the first certificate names lists it and verifies; the new issuer's CRL ($url_b) does not"

curl -sf "$base/ca" -o "$dir/ca.json" || fail "GET /ca"
jq -e --arg old "$old_id" --arg new "$new_id" '[.issuers[] | {id, current}]
    == [{id: $old, current: false}, {id: $new, current: true}]' "$dir/ca.json" >/dev/null \
    || fail "GET /ca: $(cat "$dir/ca.json")"
curl -sf "$base/crl/$new_id?format=der" -o "$dir/crl-b-gw.der" || fail "GET /crl/$new_id through the gateway"
cmp -s "$dir/crl-b.der" "$dir/crl-b-gw.der" || fail "the gateway's CRL of $new_id differs"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/crl/abcdef")
[ "$code" = 404 ] || fail "GET /crl of an unknown issuer: $code"
ok "GET /ca lists both issuers, the new one current; GET /crl/{issuer} through the gateway; an unknown issuer is 404"

# ---------------------------------------------------------------- while it runs
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "$base/ca/rotate")
[ "$code" = 403 ] || fail "a workspace member rotated the issuing CA: $code"
root_token=$(post /users/tokens "" '{"username":"root","password":"root-password-0123"}' | jq -r .access_token)
UMBRA_CLIENT_TOKEN=$root_token "$umbra" certs rotate-issuer --json >"$dir/live.json" \
    || fail "umbra certs rotate-issuer: $(cat "$dir/live.json")"
live_id=$(jq -r '.issuers[] | select(.current) | .id' "$dir/live.json")
[ "$(jq '.issuers | length' "$dir/live.json")" = 3 ] && [ -n "$live_id" ] && [ "$live_id" != "$new_id" ] \
    || fail "rotate-issuer answered: $(cat "$dir/live.json")"
fourth=$("$umbra" certs issue --workspace acme --cn d.acme.test --out "$dir/d")
"$umbra" certs get --workspace acme "$fourth" --json | jq -e --arg id "$live_id" '.issuer == $id' >/dev/null \
    || fail "certificate $fourth, issued after the rotation, is not from $live_id"
curl -sf "$base/ca.pem" -o "$dir/chain-3.pem"
split_chain "$dir/chain-3.pem" "$dir/issuing-3.pem" "$dir/root-3.pem"
openssl verify -CAfile "$dir/root.pem" -untrusted "$dir/issuing-3.pem" "$dir/d/cert.pem" >/dev/null \
    || fail "the certificate of the third issuing CA does not verify under the chain /ca.pem serves now"
[ "$(ocsp d "$dir/d/cert.pem" "$dir/issuing-3.pem")" = good ] || fail "OCSP for the third: $(cat "$dir/ocsp-d.txt")"
[ "$(ocsp b4 "$dir/b/cert.pem" "$dir/issuing-2.pem")" = good ] || fail "OCSP for the second: $(cat "$dir/ocsp-b4.txt")"
url_d=$(crl_of "$dir/d/cert.pem" "$dir/crl-d.der")
[ "$url_d" = "http://127.0.0.1:$hp/crl/$live_id" ] || fail "the third's CRL is $url_d"
cat "$dir/issuing-3.pem" "$dir/root.pem" >"$dir/ca-3.pem"
openssl crl -inform DER -in "$dir/crl-d.der" -CAfile "$dir/ca-3.pem" -noout 2>&1 | grep -q "verify OK" \
    || fail "the third issuer's CRL does not verify"
[ "$("$umbra" certs issuers | grep -c .)" = 3 ] && [ "$("$umbra" certs issuers | grep -c ' issues ')" = 1 ] \
    || fail "umbra certs issuers: $("$umbra" certs issuers)"
ok "rotated while running ($live_id, by a platform administrator; a member gets 403): it issues at once, OCSP and its CRL answer, no restart"

down
up
[ "$(ocsp a3 "$dir/a/cert.pem" "$dir/issuing-1.pem")" = revoked ] || fail "OCSP after a restart: $(cat "$dir/ocsp-a3.txt")"
[ "$(ocsp b3 "$dir/b/cert.pem" "$dir/issuing-2.pem")" = good ] || fail "OCSP after a restart: $(cat "$dir/ocsp-b3.txt")"
[ "$(ocsp d3 "$dir/d/cert.pem" "$dir/issuing-3.pem")" = good ] || fail "OCSP after a restart: $(cat "$dir/ocsp-d3.txt")"
third=$("$umbra" certs issue --workspace acme --cn c.acme.test --out "$dir/c")
"$umbra" certs get --workspace acme "$third" --json | jq -e --arg id "$live_id" '.issuer == $id' >/dev/null \
    || fail "after a restart, certificate $third is not from $live_id"
ok "restarted: all three issuers still answer; the last one made still issues"
down
echo "ca_rotate: all $checks checks passed"
