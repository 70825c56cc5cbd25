#!/usr/bin/env bash
# backup_restore.sh - `umbra backup` of a running platform and `umbra restore` into a fresh one
# (curl against real `umbra up`s). Checks:
#   - platform A: users, a workspace, computations, certificates (one revoked), credit added by
#     the administrator (ledger entries); then `umbra backup` while three writers keep creating
#     computations, certificates and credit through REST: every database copy passes
#     integrity_check (the command's and Python's sqlite3), the backup is 0700, secret files
#     0600, no key's contents printed;
#   - refusals: a backup into a non-empty directory, a restore into a non-empty state, a backup
#     with one byte flipped (exit 1, nothing written);
#   - platform B, new ports, on the restored state (its administrator must come from the
#     backup: B is given no password): every computation, certificate (serial, fingerprint,
#     status) and ledger entry (by seq, identical) recorded before the backup began is there,
#     and every write acknowledged before it began; the same CA; the users log in with their
#     passwords; a token issued by A still works (the signing key and the sessions came back);
#     the ledger verifies.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
python=/usr/bin/python3
work=$(mktemp -d /tmp/umbra-backup.XXXXXX)
pid=
writers=()
cleanup () {
    touch "$work/stop"
    for w in "${writers[@]}"; do kill "$w" 2>/dev/null || true; wait "$w" 2>/dev/null || true; done
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    if [ -n "${BACKUP_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; tail -n 30 "$work/umbra.log" >&2 || true; exit 1; }

# start STATE LOG [ENV...]: `umbra up` on STATE with free ports; sets base and pid
start () {
    local state=$1 log=$2; shift 2
    local gw ap aq cp cq ch bp bq mp mq lp lq
    read -r gw ap aq cp cq ch bp bq mp mq lp lq < <($python -c '
import socket
held = [socket.socket() for _ in range(12)]
for s in held: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])')
    base=http://127.0.0.1:$gw
    env UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$ap UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$aq \
        UMBRA_CERTS_ENDPOINT=tcp://127.0.0.1:$cp UMBRA_CERTS_PUB_ENDPOINT=tcp://127.0.0.1:$cq \
        UMBRA_CERTS_HTTP_LISTEN=127.0.0.1:$ch \
        UMBRA_BACKENDS_ENDPOINT=tcp://127.0.0.1:$bp UMBRA_BACKENDS_PUB_ENDPOINT=tcp://127.0.0.1:$bq \
        UMBRA_COMPUTATIONS_ENDPOINT=tcp://127.0.0.1:$mp UMBRA_COMPUTATIONS_PUB_ENDPOINT=tcp://127.0.0.1:$mq \
        UMBRA_BILLING_ENDPOINT=tcp://127.0.0.1:$lp UMBRA_BILLING_PUB_ENDPOINT=tcp://127.0.0.1:$lq \
        UMBRA_BILLING_DEFAULT_PLAN=enterprise "$@" \
        "$umbra" up --state "$state" --listen 127.0.0.1:$gw >"$log" 2>&1 &
    pid=$!
    ln -sf "$log" "$work/umbra.log"
    curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 60 -o /dev/null "$base/health" \
        || fail "the platform on $state did not come up"
}
stop () {
    kill "$pid"
    wait "$pid" || fail "the platform did not stop cleanly"
    pid=
}

# req METHOD PATH TOKEN [JSON]: sets status and body
req () {
    local method=$1 path=$2 token=$3 data=${4:-}
    local args=(-s -o "$work/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
    [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
    status=$(curl "${args[@]}" "$base$path")
    body=$(cat "$work/body")
}
expect () { [ "$status" = "$1" ] || fail "$2: expected $1, got $status: $body"; }
login () {  # USER PASSWORD: sets status and body
    status=$(curl -s -o "$work/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$(jq -n --arg u "$1" --arg p "$2" '{username: $u, password: $p}')" "$base/users/tokens")
    body=$(cat "$work/body")
}
definition () {  # NAME: alice provides the algorithm and consumes the result, bob the data
    jq -n --arg name "$1" '{name: $name, algorithm: {provider: "alice", type: "python"},
        datasets: [{provider: "bob", filename: "d.csv"}], consumers: ["alice"],
        backend: {tee: "none", vcpus: 1, memory_mb: 512}, run_timeout_s: 60}'
}

# ---------------------------------------------------------------- platform A
start "$work/a" "$work/a.log" UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=root-password-0123
declare -A token password
password[root]=root-password-0123
login root "${password[root]}"; expect 201 "root logs in"
token[root]=$(jq -r .access_token <<<"$body")
for user in alice bob carol; do
    password[$user]="$user-password-$RANDOM$RANDOM"
    status=$(curl -s -o "$work/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$(jq -n --arg u "$user" --arg p "${password[$user]}" '{username: $u, password: $p}')" "$base/users")
    [ "$status" = 201 ] || fail "user $user: $status $(cat "$work/body")"
    login "$user" "${password[$user]}"; expect 201 "$user logs in"
    token[$user]=$(jq -r .access_token <<<"$body")
done
req POST /workspaces "${token[alice]}" '{"name":"lab"}'; expect 201 "workspace lab"
for user in bob carol; do
    req POST /workspaces/lab/invitations "${token[alice]}" "{\"username\":\"$user\",\"role\":\"member\"}"
    expect 201 "invite $user"
    req POST "/invitations/$(jq -r .id <<<"$body")/accept" "${token[$user]}"; expect 200 "$user accepts"
done

declare -a cmps serials
for i in 1 2 3 4 5; do
    req POST /workspaces/lab/computations "${token[alice]}" "$(definition "regression-$i")"
    expect 201 "computation $i"
    cmps+=("$(jq -r .id <<<"$body")")
done
for i in 1 2 3 4; do
    who=alice; [ $((i % 2)) = 0 ] && who=bob
    req POST /workspaces/lab/certs "${token[$who]}" "{\"common_name\":\"svc$i.lab.example\",\"sans\":[\"svc$i.lab.example\"]}"
    expect 201 "certificate $i"
    serials+=("$(jq -r .serial <<<"$body")")
done
req POST "/workspaces/lab/certs/${serials[3]}/revoke" "${token[alice]}" '{"reason":"keyCompromise"}'
expect 200 "revoke ${serials[3]}"
for i in 1 2 3; do
    req POST /workspaces/lab/billing/credits "${token[root]}" "{\"amount\": $((i * 1000000)), \"reference\": \"pay-$i\"}"
    expect 201 "credit $i"
done
ok "platform A: root, alice, bob, carol; workspace lab; ${#cmps[@]} computations, ${#serials[@]} certificates (one revoked), 3 credits"

# What exists before the backup begins
for i in "${!cmps[@]}"; do
    req GET "/workspaces/lab/computations/${cmps[$i]}" "${token[alice]}"; expect 200 "computation ${cmps[$i]}"
    jq -c '{id, name, version}' <<<"$body" >"$work/cmp-$i.a"
done
for i in "${!serials[@]}"; do
    req GET "/workspaces/lab/certs/${serials[$i]}" "${token[alice]}"; expect 200 "certificate ${serials[$i]}"
    jq -c '{serial, common_name, status, fingerprint, not_after, certificate}' <<<"$body" >"$work/cert-$i.a"
done
curl -sf "$base/ca.pem" >"$work/ca.a" || fail "ca.pem"

# Three writers keep the platform writing until told to stop: computations,
# certificates, credit (each line: what, the status, its id)
writer () {
    local w=$1 n=0 code id
    while [ ! -e "$work/stop" ]; do
        n=$((n + 1))
        code=$(curl -s -o "$work/w$w.body" -w '%{http_code}' -H "Authorization: Bearer ${token[alice]}" \
            -H 'Content-Type: application/json' --data-binary "$(definition "bg-$w-$n")" "$base/workspaces/lab/computations")
        id=$(jq -r '.id // empty' "$work/w$w.body" 2>/dev/null || true)
        echo "cmp $code $id" >>"$work/writes.$w"
        code=$(curl -s -o "$work/w$w.body" -w '%{http_code}' -H "Authorization: Bearer ${token[bob]}" \
            -H 'Content-Type: application/json' --data-binary "{\"common_name\":\"bg-$w-$n.lab.example\"}" \
            "$base/workspaces/lab/certs")
        id=$(jq -r '.serial // empty' "$work/w$w.body" 2>/dev/null || true)
        echo "cert $code $id" >>"$work/writes.$w"
        code=$(curl -s -o "$work/w$w.body" -w '%{http_code}' -H "Authorization: Bearer ${token[root]}" \
            -H 'Content-Type: application/json' --data-binary "{\"amount\": 1000, \"reference\": \"bg-$w-$n\"}" \
            "$base/workspaces/lab/billing/credits")
        id=$(jq -r '.txn // empty' "$work/w$w.body" 2>/dev/null || true)
        echo "credit $code $id" >>"$work/writes.$w"
    done
}
for w in 1 2 3; do writer $w & writers+=($!); done
writes () { cat "$work"/writes.* 2>/dev/null | wc -l; }
for _ in $(seq 1 500); do [ "$(writes)" -ge 30 ] && break; sleep 0.02; done
[ "$(writes)" -ge 30 ] || fail "the writers do not write"

# The ledger as it is now: every entry here, and every write acknowledged
# before the backup starts, must come back
req GET "/workspaces/lab/billing/ledger?limit=1000" "${token[alice]}"; expect 200 "the ledger"
jq -c '.entries[]' <<<"$body" >"$work/ledger.a"
[ "$(wc -l <"$work/ledger.a")" -ge 6 ] || fail "the ledger has too few entries: $body"
cat "$work"/writes.* >"$work/acknowledged"
before=$(wc -l <"$work/acknowledged")
"$umbra" backup --state "$work/a" --out "$work/backup" >"$work/backup.out" 2>"$work/backup.err" \
    || fail "umbra backup: $(cat "$work/backup.err")"
during=$(( $(writes) - before ))
for _ in $(seq 1 500); do [ "$(writes)" -ge $((before + during + 9)) ] && break; sleep 0.02; done
touch "$work/stop"
for w in "${writers[@]}"; do wait "$w" || true; done
writers=()
after=$(writes)
[ "$after" -gt $((before + during)) ] || fail "the writers stopped before the backup ended"
bad=$(cat "$work"/writes.* | awk '$2 != 201 && $2 != 200' | head -3)
[ -z "$bad" ] || fail "writes refused while the backup ran: $bad"
[ "$(grep -c ': [0-9]* pages, integrity ok$' "$work/backup.out")" = 5 ] \
    || fail "not five databases, each with integrity ok: $(cat "$work/backup.out")"
ok "umbra backup while 3 writers ran ($before writes before it, $during during it, $((after - before - during)) after):$(tail -n 1 "$work/backup.out" | cut -d: -f2 | cut -d';' -f1)"

# The backup: 0700, secrets 0600, no -wal beside a copy, each copy whole by
# another reader too, nothing of a key printed
[ "$(stat -c %a "$work/backup")" = 700 ] || fail "the backup directory is not 0700"
[ -f "$work/backup/MANIFEST" ] || fail "no MANIFEST"
for f in "$work"/backup/keys/*.key "$work"/backup/certs/ca/*.key "$work"/backup/auth/*.key "$work"/backup/*/*.db; do
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f is $(stat -c %a "$f"), not 0600"
done
[ -z "$(find "$work/backup" -name '*-wal' -o -name '*-shm' -o -name '*-journal')" ] || fail "WAL files in the backup"
[ -z "$(find "$work/backup" -path '*backends/cvms*' -o -path '*backends/links*')" ] || fail "CVM directories in the backup"
grep -q "^version $("$umbra" version | cut -d' ' -f2)$" "$work/backup/MANIFEST" || fail "the MANIFEST has no version"
[ "$(grep -c '^file ' "$work/backup/MANIFEST")" = "$(find "$work/backup" -type f ! -name MANIFEST | wc -l)" ] \
    || fail "the MANIFEST does not list every file"
for db in "$work"/backup/*/*.db; do
    [ "$($python -c 'import sqlite3, sys; print(sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True).execute("PRAGMA integrity_check").fetchone()[0])' "$db")" = ok ] \
        || fail "$db fails integrity_check"
done
# the secret part of each key file: a CURVE secret key, PEM lines, the token signing seed
$python - "$work/backup.out" "$work/backup.err" "$work"/a/keys/*.key "$work"/a/certs/ca/*.key "$work"/a/auth/*.key <<'PY' \
    || fail "umbra backup printed a secret"
import re, sys
printed = open(sys.argv[1]).read() + open(sys.argv[2]).read()
for path in sys.argv[3:]:
    text = open(path).read()
    secrets = re.findall(r'secret-key = "([^"]+)"', text)
    secrets += [l for l in text.splitlines() if len(l) >= 16 and not l.startswith(("-----", "#", " ", "umbra-"))]
    secrets += re.findall(r'^umbra-ed25519-seed-v1 (\S+)$', text, re.M)
    assert secrets, "no secret found in " + path
    for secret in secrets:
        if secret in printed:
            sys.exit("%s: printed" % path)
PY
ok "the backup: 0700, MANIFEST lists every file with the version, secrets 0600, no WAL files, every database passes integrity_check, no key printed"

# ---------------------------------------------------------------- refusals
mkdir "$work/full"; touch "$work/full/x"
set +e; "$umbra" backup --state "$work/a" --out "$work/full" 2>"$work/err"; rc=$?; set -e
[ $rc = 1 ] && grep -q 'is not empty' "$work/err" || fail "a backup into a non-empty directory: $rc $(cat "$work/err")"
[ "$(ls "$work/full")" = x ] || fail "a refused backup wrote"
set +e; "$umbra" backup --state "$work/a" 2>"$work/err"; rc=$?; set -e
[ $rc = 2 ] || fail "a backup without --out: $rc"
stop
set +e; "$umbra" restore --from "$work/backup" --state "$work/a" 2>"$work/err"; rc=$?; set -e
[ $rc = 1 ] && grep -q 'is not empty' "$work/err" || fail "a restore into a non-empty state: $rc $(cat "$work/err")"
cp -a "$work/backup" "$work/tampered"
target=$(find "$work/tampered/computations" -name '*.db' | head -n 1)
$python -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(4000); b = f.read(1); f.seek(4000); f.write(bytes([b[0] ^ 0x01]))' "$target"
set +e; "$umbra" restore --from "$work/tampered" --state "$work/t" 2>"$work/err"; rc=$?; set -e
[ $rc = 1 ] && grep -q 'computations/computations.db: changed since the backup' "$work/err" \
    || fail "a tampered backup: $rc $(cat "$work/err")"
[ ! -e "$work/t" ] || fail "a refused restore wrote $work/t"
ok "refused with exit 1 and nothing written: a backup into a non-empty directory, a restore into a non-empty state, a backup with one byte flipped ($(grep -o 'computations/computations.db: changed since the backup' "$work/err"))"

# ---------------------------------------------------------------- platform B
"$umbra" restore --from "$work/backup" --state "$work/b" >"$work/restore.out" 2>"$work/restore.err" \
    || fail "umbra restore: $(cat "$work/restore.err")"
[ "$(stat -c %a "$work/b")" = 700 ] && [ "$(stat -c %a "$work/b/keys/auth.key")" = 600 ] \
    && [ "$(stat -c %a "$work/b/certs/ca/root.key")" = 600 ] || fail "the restored modes"
# No administrator password: root must be in the restored database, or auth refuses to start
start "$work/b" "$work/b.log" UMBRA_ADMIN_USERNAME=root
ok "umbra restore into a new state ($(grep -o '^restored [0-9]* files' "$work/restore.out"), modes kept), and a platform on new ports starts on it with no administrator password given"

for i in "${!cmps[@]}"; do
    req GET "/workspaces/lab/computations/${cmps[$i]}" "${token[alice]}"; expect 200 "computation ${cmps[$i]} after the restore"
    [ "$(jq -c '{id, name, version}' <<<"$body")" = "$(cat "$work/cmp-$i.a")" ] || fail "computation ${cmps[$i]} differs: $body"
done
for i in "${!serials[@]}"; do
    req GET "/workspaces/lab/certs/${serials[$i]}" "${token[alice]}"; expect 200 "certificate ${serials[$i]} after the restore"
    [ "$(jq -c '{serial, common_name, status, fingerprint, not_after, certificate}' <<<"$body")" = "$(cat "$work/cert-$i.a")" ] \
        || fail "certificate ${serials[$i]} differs: $body"
done
req GET "/workspaces/lab/certs/${serials[3]}" "${token[alice]}"
[ "$(jq -r .status <<<"$body")" = revoked ] || fail "the revoked certificate is $(jq -r .status <<<"$body")"
cmp -s "$work/ca.a" <(curl -sf "$base/ca.pem") || fail "the CA differs"
ok "every computation (${#cmps[@]}) and certificate (${#serials[@]}, by serial and fingerprint; the revoked one still revoked) is back, under the same CA; alice's token from A works on B"

req GET "/workspaces/lab/billing/ledger?limit=1000" "${token[alice]}"; expect 200 "the ledger after the restore"
jq -c '.entries[]' <<<"$body" >"$work/ledger.b"
while read -r entry; do
    seq=$(jq -r .seq <<<"$entry")
    [ "$(jq -c --argjson s "$seq" 'select(.seq == $s)' "$work/ledger.b")" = "$entry" ] \
        || fail "ledger entry $seq is missing or differs after the restore: $entry"
done <"$work/ledger.a"
acknowledged_cmps=0 acknowledged_certs=0 acknowledged_credits=0
while read -r what code id; do
    case $what in
        cmp)    req GET "/workspaces/lab/computations/$id" "${token[alice]}"; acknowledged_cmps=$((acknowledged_cmps + 1)) ;;
        cert)   req GET "/workspaces/lab/certs/$id" "${token[alice]}"; acknowledged_certs=$((acknowledged_certs + 1)) ;;
        credit) grep -q "\"txn\":\"$id\"" "$work/ledger.b" || fail "credit $id was acknowledged before the backup and is gone"
                acknowledged_credits=$((acknowledged_credits + 1)); continue ;;
    esac
    expect 200 "$what $id, acknowledged before the backup began"
done <"$work/acknowledged"
# Whatever came during the backup is all there or not at all: every credit's
# entries sum to zero (the ledger verifies below), every computation reads whole
req GET "/workspaces/lab/computations?limit=500" "${token[alice]}"; expect 200 "the list"
restored_cmps=$(jq '.items | length' <<<"$body")
ok "all $(wc -l <"$work/ledger.a") ledger entries recorded before the backup are back, identical (by seq); and the $acknowledged_cmps computations, $acknowledged_certs certificates and $acknowledged_credits credits acknowledged before it began ($restored_cmps computations in all)"

for user in root alice bob carol; do
    login "$user" "${password[$user]}"; expect 201 "$user logs in on B"
done
login alice wrong-password-000; expect 401 "a wrong password on B"
req GET /users/me "${token[alice]}"; expect 200 "alice's token from platform A, on B"
req GET /billing/verify "${token[root]}"; expect 200 "verify"
[ "$(jq -r .ok <<<"$body")" = true ] || fail "the restored ledger does not add up: $body"
ok "on B every user logs in with their password (a wrong one is 401), A's access token still works, and the ledger verifies ($(jq -r .transactions <<<"$body") transactions, $(jq -r .entries <<<"$body") entries)"
stop
echo "$checks checks passed"
