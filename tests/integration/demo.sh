#!/usr/bin/env bash
# demo.sh - `umbra demo`, the contract's one-shot proof, as a user runs it:
#   - alone: it brings the platform up in its own process, runs the linear regression end to end
#     and exits 0; the result it prints has n=15 and the slope and intercept of an independent fit
#     (awk over tests/integration/seed/data*.csv, the data the demo embeds); the audit trail is
#     verified; afterwards nothing of it runs (no umbra-agent, no process naming its directory)
#     and its temporary directory is gone;
#   - --keep: the directory stays, with the platform's state, the keys and the result;
#   - --url against a running `umbra up`, with the administrator from UMBRA_ADMIN_USERNAME and
#     UMBRA_ADMIN_PASSWORD: exit 0, and it tidies up (host removed, users disabled);
#   - usage errors exit 2: --bogus, --url without an administrator.
# TEST_BUILD_DIR (default build) names the build directory. Exit 0 only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
seed=$root/tests/integration/seed
[ -x "$umbra" ] || { echo "demo: $umbra is not built" >&2; exit 1; }
command -v jq >/dev/null || { echo "demo: jq is needed" >&2; exit 1; }

work=$(mktemp -d /tmp/umbra-demo-test.XXXXXX)
pid=
kept=
cleanup () {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    [ -n "$kept" ] && rm -rf "$kept"
    rm -rf "$work"
}
trap cleanup EXIT
checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; exit 1; }

# The fit, computed independently (normal equations) over the seed data the demo embeds
read -r want_slope want_intercept want_n < <(tail -q -n +2 "$seed/data1.csv" "$seed/data2.csv" | awk -F, '
    { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
    END { slope = (n * sxy - sx * sy) / (n * sxx - sx * sx); printf "%.12f %.12f %d\n", slope, (sy - slope * sx) / n, n }')

# check_result OUT: the printed model has n and a slope, and they are awk's
check_result () {
    local model
    model=$(sed -n 's/^result ([^)]*): //p' "$1")
    [ -n "$model" ] || fail "no result line in: $(cat "$1")"
    grep -Eq '"n": [0-9]+' <<<"$model" && grep -Eq '"slope": -?[0-9]' <<<"$model" \
        || fail "the result lacks n or a slope: $model"
    jq -e --argjson s "$want_slope" --argjson i "$want_intercept" --argjson n "$want_n" \
        '((.slope - $s) | fabs) < 1e-9 and ((.intercept - $i) | fabs) < 1e-9 and .n == $n' <<<"$model" >/dev/null \
        || fail "the result $model is not awk's fit (slope $want_slope intercept $want_intercept n $want_n)"
    grep -q "^fit over n=$want_n points: y = " "$1" || fail "no fit line in: $(cat "$1")"
    grep -Eq "audit trail of demo-[0-9a-f]{6} verified: [0-9]+ records" "$1" || fail "the audit trail was not verified: $(cat "$1")"
    grep -q "^umbra demo: done in " "$1" || fail "no final line: $(cat "$1")"
}

# ---------------------------------------------------------------- alone
started=$(date +%s.%N)
rc=0
"$umbra" demo >"$work/out" 2>"$work/err" || rc=$?
seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
cat "$work/out"
[ $rc -eq 0 ] || { cat "$work/err" >&2; fail "umbra demo exited $rc"; }
ok "umbra demo exited 0 in $seconds s"
check_result "$work/out"
ok "the result: $(sed -n 's/^result ([^)]*): //p' "$work/out"), awk's fit; the audit trail verified"
grep -q "platform runs in this process" "$work/out" && grep -q "^umbra demo: platform stopped" "$work/out" \
    || fail "the in-process platform is not told started and stopped"
grep -q "process:///" "$work/out" && grep -q "nothing is attested" "$work/out" || fail "the insecure host is not said"
demo_dir=$(sed -n 's/.*state \(\/[^ ]*\)\/state .*/\1/p' "$work/out" | head -n 1)
[ -n "$demo_dir" ] || fail "cannot read the demo's directory from its output"
[ ! -e "$demo_dir" ] || fail "$demo_dir is left behind"
if pgrep -f -- "$demo_dir" >/dev/null; then
    fail "processes naming $demo_dir still run: $(pgrep -af -- "$demo_dir")"
fi
ok "nothing is left: $demo_dir is gone and no process (umbra-agent or other) names it"
[ ! -s "$work/err" ] || echo "  (stderr: $(tr '\n' ' ' <"$work/err"))"

# ---------------------------------------------------------------- --keep
rc=0
"$umbra" demo --keep >"$work/out" 2>"$work/err" || rc=$?
[ $rc -eq 0 ] || { cat "$work/out" "$work/err" >&2; fail "umbra demo --keep exited $rc"; }
kept=$(sed -n 's/^umbra demo: kept \(\/[^ ]*\) .*/\1/p' "$work/out")
[ -n "$kept" ] && [ -d "$kept/state" ] && [ -s "$kept/result/model.json" ] && [ -s "$kept/keys/ada.key" ] \
    || fail "--keep did not keep the state, the result and the keys: $(cat "$work/out")"
[ "$(stat -c %a "$kept/keys/ada.key")" = 600 ] || fail "a kept private key is not mode 0600"
pgrep -f -- "$kept" >/dev/null && fail "processes naming $kept still run after --keep"
ok "--keep keeps $kept (state, keys, result) and still leaves nothing running"
rm -rf "$kept"; kept=

# ---------------------------------------------------------------- --url, a running platform
read -r gw < <(/usr/bin/python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for service in auth certs backends computations; do
    upper=$(tr a-z A-Z <<<"$service")
    export "UMBRA_${upper}_ENDPOINT=ipc://$work/$service.ipc" "UMBRA_${upper}_PUB_ENDPOINT=ipc://$work/$service-pub.ipc"
done
export UMBRA_CERTS_HTTP_LISTEN=127.0.0.1:0 UMBRA_ADMIN_USERNAME=root UMBRA_ADMIN_PASSWORD=root-password-0123
"$umbra" up --state "$work/state" --listen "127.0.0.1:$gw" >"$work/up.log" 2>&1 &
pid=$!
curl -sf --retry 100 --retry-connrefused --retry-delay 0 --retry-max-time 30 -o /dev/null "http://127.0.0.1:$gw/health" \
    || { cat "$work/up.log" >&2; fail "umbra up did not come up"; }
rc=0
"$umbra" demo --url "http://127.0.0.1:$gw" >"$work/out" 2>"$work/err" || rc=$?
[ $rc -eq 0 ] || { cat "$work/out" "$work/err" >&2; fail "umbra demo --url exited $rc"; }
check_result "$work/out"
grep -q "platform administrator 'root' signed in" "$work/out" || fail "the administrator did not sign in"
grep -q "tidied up: host removed; 4 demo users disabled" "$work/out" || fail "no tidying up: $(cat "$work/out")"
ok "umbra demo --url against umbra up (administrator from the environment): exit 0, same fit, tidied up"
rc=0
"$umbra" demo --url "http://127.0.0.1:$gw" >"$work/out2" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$work/out2" >&2; fail "a second umbra demo --url exited $rc"; }
ok "a second demo on the same platform: exit 0 (names and host URI do not collide)"
unset UMBRA_ADMIN_PASSWORD
rc=0
"$umbra" demo --url "http://127.0.0.1:$gw" >"$work/out" 2>"$work/err" || rc=$?
[ $rc -eq 2 ] && grep -q "needs a platform administrator" "$work/err" || fail "--url without a password: exit $rc"
rc=0
"$umbra" demo --url "http://127.0.0.1:$gw" --admin-user root --admin-password wrong-password-1 >"$work/out" 2>"$work/err" || rc=$?
[ $rc -eq 1 ] && grep -q "step 1 (the administrator signs in) failed: .*401" "$work/err" \
    || { cat "$work/err" >&2; fail "a wrong administrator password: exit $rc"; }
ok "--url without an administrator is a usage error (2); a wrong password fails step 1 (1, 401 said)"
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=
[ $rc -eq 0 ] || fail "umbra up exited $rc on SIGTERM"

# ---------------------------------------------------------------- usage
rc=0
"$umbra" demo --bogus >"$work/out" 2>"$work/err" || rc=$?
[ $rc -eq 2 ] && grep -q "unknown option '--bogus'" "$work/err" && grep -q "^usage: umbra demo" "$work/err" \
    || fail "umbra demo --bogus: exit $rc: $(cat "$work/err")"
[ ! -s "$work/out" ] || fail "umbra demo --bogus wrote to stdout"
"$umbra" demo --help | grep -q "backends.none_accel=tcg" || fail "--help does not say TCG"
ok "umbra demo --bogus exits 2 with the usage on stderr; --help says why VMs run under TCG"

echo "demo: all $checks checks passed"
