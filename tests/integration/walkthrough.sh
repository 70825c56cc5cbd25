#!/usr/bin/env bash
# walkthrough - the README's REST walk-through with curl against a real `umbra up`:
# two users, a workspace, an invitation, members, a third user who sees 404, token
# refresh/revoke, API keys, bad input; then a restart on the same state directory.
set -euo pipefail
build=${TEST_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
umbra=$build/cli/umbra
state=$(mktemp -d /tmp/umbra-walk.XXXXXX)
log=$state/umbra.log
pid=
cleanup () {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$state"
}
trap cleanup EXIT

# three distinct free ports, held open together while the kernel picks them
read -r gw ap pp < <(/usr/bin/python3 -c '
import socket
held = [socket.socket() for _ in range(3)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
base=http://127.0.0.1:$gw
admin_password='root-password-0123'

start () {
    UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$ap UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$pp \
    UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=$admin_password UMBRA_LOG_LEVEL=debug \
        "$umbra" up --state "$state/data" --listen 127.0.0.1:$gw >>"$log" 2>&1 &
    pid=$!
    curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 \
        -o /dev/null "$base/health" || { cat "$log"; echo "platform did not come up"; exit 1; }
}

stop () {
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    pid=
    [ $rc -eq 0 ] || { echo "umbra up exited $rc on SIGTERM"; exit 1; }
}

# req METHOD PATH [TOKEN] [JSON]: sets status and body
req () {
    local method=$1 path=$2 token=${3:-} data=${4:-}
    local args=(-s -o "$state/body" -w '%{http_code}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    status=$(curl "${args[@]}" "$base$path")
    body=$(cat "$state/body")
}

expect () {
    local want=$1 what=$2
    if [ "$status" != "$want" ]; then
        echo "FAIL: $what: expected $want, got $status: $body"
        exit 1
    fi
    echo "ok   $what ($status)"
}

start

req POST /users "" '{"username":"alice","password":"alice-password-1","email":"alice@example.org"}'
expect 201 "register alice"
alice_id=$(jq -r .id <<<"$body"); [ "${alice_id:0:4}" = "usr_" ]
req POST /users "" '{"username":"bob","password":"bob-password-12"}';      expect 201 "register bob"
req POST /users "" '{"username":"carol","password":"carol-password-1"}';   expect 201 "register carol"
req POST /users "" '{"username":"alice","password":"another-password"}';  expect 409 "duplicate username"
req POST /users "" '{"username":"dave","password":"short"}';              expect 422 "weak password"
req POST /users "" '{"username":"dave"}';                                  expect 400 "missing password"
req POST /users "" '{"username":"dave","password":12345678901}';           expect 400 "password of the wrong type"
req POST /users "" '{"username":';                                         expect 400 "invalid JSON"
[ "$(jq -r .error.code <<<"$body")" != null ]

req POST /users/tokens "" '{"username":"alice","password":"alice-password-1"}'; expect 201 "alice logs in"
alice=$(jq -r .access_token <<<"$body"); alice_refresh=$(jq -r .refresh_token <<<"$body")
[ "$(jq -r .expires_in <<<"$body")" = 900 ]
req POST /users/tokens "" '{"username":"bob","password":"bob-password-12"}';     expect 201 "bob logs in"
bob=$(jq -r .access_token <<<"$body")
req POST /users/tokens "" '{"username":"carol","password":"carol-password-1"}'; expect 201 "carol logs in"
carol=$(jq -r .access_token <<<"$body")
req POST /users/tokens "" '{"username":"alice","password":"wrong-password"}';   expect 401 "wrong password"
req POST /users/tokens "" '{"username":"nobody","password":"wrong-password"}';  expect 401 "unknown user"

req GET /workspaces;                                                 expect 401 "no token"
req GET /workspaces "${alice}x";                                     expect 401 "forged token"
req POST /workspaces "$alice" '{"name":"acme"}';                     expect 201 "alice creates acme"
ws=$(jq -r .id <<<"$body")
req POST /workspaces "$carol" '{"name":"acme"}';                     expect 409 "workspace name taken"
req GET /workspaces "$alice";                                        expect 200 "alice lists workspaces"
[ "$(jq -r '.items[0].name' <<<"$body")" = acme ]

req POST /workspaces/acme/invitations "$alice" '{"username":"bob","role":"member"}'; expect 201 "alice invites bob"
invitation=$(jq -r .id <<<"$body")
req POST /workspaces/acme/invitations "$alice" '{"username":"bob","role":"member"}'; expect 409 "no duplicate invitation"
req POST /invitations/$invitation/accept "$carol";                    expect 404 "carol cannot accept bob's invitation"
req GET /invitations "$bob";                                          expect 200 "bob sees his invitation"
[ "$(jq -r '.items[0].id' <<<"$body")" = "$invitation" ]
req POST /invitations/$invitation/accept "$bob";                      expect 200 "bob accepts"
req POST /workspaces/acme/invitations "$alice" '{"username":"bob","role":"viewer"}'; expect 409 "members are not invited again"

req GET /workspaces/acme/members "$bob";                              expect 200 "bob lists members"
[ "$(jq -r '[.items[] | "\(.username):\(.role)"] | sort | join(",")' <<<"$body")" = "alice:admin,bob:member" ]
req POST /workspaces/acme/invitations "$bob" '{"username":"carol","role":"viewer"}'; expect 403 "a member cannot invite"

req GET /workspaces/acme "$carol";                                    expect 404 "carol does not see acme by name"
req GET /workspaces/$ws "$carol";                                     expect 404 "nor by id"
req GET /workspaces/acme/members "$carol";                            expect 404 "nor its members"
req GET /workspaces/no-such-ws "$carol"
[ "$status" = 404 ] && [ "$(jq -r .error.message <<<"$body")" = "$(req GET /workspaces/acme "$carol"; jq -r .error.message <<<"$body")" ] \
    || { echo "FAIL: a missing and a hidden workspace must look the same"; exit 1; }
echo "ok   a hidden workspace looks like a missing one"

req POST /users/tokens/refresh "" "{\"refresh_token\":\"$alice_refresh\"}"; expect 200 "refresh rotates"
alice=$(jq -r .access_token <<<"$body"); alice_refresh2=$(jq -r .refresh_token <<<"$body")
[ "$alice_refresh2" != "$alice_refresh" ]
req GET /workspaces "$alice";                                          expect 200 "the new access token works"
req POST /users/tokens/refresh "" "{\"refresh_token\":\"$alice_refresh\"}"; expect 401 "a rotated refresh token is refused"
req GET /workspaces "$alice";                                          expect 401 "reuse revoked the session"
req POST /users/tokens "" '{"username":"alice","password":"alice-password-1"}'; expect 201 "alice logs in again"
alice=$(jq -r .access_token <<<"$body")

req POST /users/tokens/revoke "$bob" '{}';                             expect 200 "bob logs out"
req GET /workspaces "$bob";                                            expect 401 "bob's token is revoked"

req POST /workspaces/acme/api-keys "$alice" '{"name":"ci","actions":["workspace.read","members.read"]}'
expect 201 "alice makes an API key"
key=$(jq -r .key <<<"$body"); key_id=$(jq -r .id <<<"$body"); [ "${key:0:4}" = "umb_" ]
req GET /workspaces/acme/api-keys "$alice";                            expect 200 "API keys are listed"
jq -e '.items[0] | has("key") | not' <<<"$body" >/dev/null || { echo "FAIL: the list shows the key"; exit 1; }
status=$(curl -s -o "$state/body" -w '%{http_code}' -H "X-API-Key: $key" "$base/workspaces/acme/members")
body=$(cat "$state/body");                                             expect 200 "the API key lists members"
req POST /workspaces/acme/invitations "$key" '{"username":"carol","role":"viewer"}'; expect 403 "the key lacks members.manage"
req DELETE /workspaces/acme/api-keys/$key_id "$alice";                 expect 200 "alice revokes the key"
req GET /workspaces/acme/members "$key";                               expect 401 "a revoked key is refused"

{ printf '{"username":"'; head -c 2000000 /dev/zero | tr '\0' a; printf '"}'; } >"$state/big.json"
status=$(curl -s -o "$state/body" -w '%{http_code}' -H 'Content-Type: application/json' \
         --data-binary @"$state/big.json" "$base/users")
body=$(cat "$state/body");                                             expect 413 "a huge body"
req GET /nowhere;                                                      expect 404 "unknown path"

status=$(curl -s -o "$state/body" -w '%{http_code}' -D "$state/headers" -H 'X-Request-Id: walk-123' "$base/health")
body=$(cat "$state/body");                                             expect 200 "health"
grep -qi '^x-request-id: walk-123' "$state/headers" || { echo "FAIL: request id not echoed"; exit 1; }
req GET /metrics;                                                      expect 200 "metrics"
grep -q 'umbra_mesh_requests_total{service="auth"' <<<"$body" || { echo "FAIL: no auth metrics"; exit 1; }
[ "$(grep -c '^# TYPE umbra_mesh_requests_total ' <<<"$body")" = 1 ] || { echo "FAIL: a family twice"; exit 1; }
req GET /openapi.json;                                                 expect 200 "openapi document"
[ "$(jq -r .openapi <<<"$body")" = 3.1.0 ]

req POST /users/tokens "" "{\"username\":\"root\",\"password\":\"$admin_password\"}"; expect 201 "the bootstrapped admin logs in"

stop
for secret in alice-password-1 bob-password-12 "$admin_password" "$alice" "$key" "$alice_refresh2"; do
    if grep -qF -- "$secret" "$log"; then echo "FAIL: a secret reached the log"; exit 1; fi
done
echo "ok   no password, token or key in the log"

start
req POST /users/tokens "" '{"username":"alice","password":"alice-password-1"}'; expect 201 "alice logs in after a restart"
alice=$(jq -r .access_token <<<"$body")
req GET /workspaces/acme/members "$alice";                             expect 200 "acme survived the restart"
[ "$(jq -r '.items | length' <<<"$body")" = 2 ]
stop
echo "walkthrough passed"
