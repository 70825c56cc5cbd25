#!/usr/bin/env bash
# systemd_units.sh - the systemd units of a TEE host (deploy/systemd/) checked without installing
# anything: no file goes to /usr or /etc, no user is created on this machine, no unit is started.
#
#   - systemd-analyze verify on copies of the units whose ExecStart names the built executables
#     ($TEST_BUILD_DIR) instead of /usr/bin: any line it prints is a failure (it exits 0 on
#     warnings such as an unknown key). Two controls prove the check can fail: an unknown key and a
#     missing executable must both be reported.
#   - systemd-analyze verify does not look up User= (an unknown user is not reported), so the
#     user is checked apart: systemd-sysusers and systemd-tmpfiles run on umbra.sysusers.conf and
#     umbra.tmpfiles.conf inside a temporary root (--root), and what they made is checked there.
#   - systemd-analyze security --offline=yes: each service's overall exposure at most
#     $max_exposure, and no exposure the analyser finds beyond the ones listed below, each with
#     its reason. The overall score alone is coarse (dropping MemoryDenyWriteExecute= or
#     NoNewPrivileges= moves it by 0.0 to 0.2), so the list is what catches a lost line.
#   - the units' wiring (user, state, target, order), the flags of ExecStart against each
#     executable's --help, the UMBRA_* variables they set against `umbra config`, and
#     umbra.conf.example loaded by `umbra config`.
#
# Needs systemd's tools (package systemd, in scripts/install-deps), not systemd as PID 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${TEST_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
units=$root/deploy/systemd
services="auth certs billing backends computations gateway"
# The "OK" band of systemd-analyze security is 1.0 to 4.9. These units measure 1.2 (1.6 for
# umbra-backends: its libvirt groups, AF_VSOCK and no PrivateUsers=). 2.0 leaves room for a
# newer systemd weighing things a little differently, and is crossed when a whole class of
# hardening goes (capabilities back in the bounding set: 3.0; no system call filter: 2.7),
# which 4.5 would not notice.
max_exposure=2.0

n=0
failed=0
ok ()   { n=$((n + 1)); echo "ok $n - $*"; }
fail () { n=$((n + 1)); echo "not ok $n - $*"; failed=$((failed + 1)); }

command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze is not installed (package systemd)"; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq is not installed"; exit 1; }
export LC_ALL=C.UTF-8 SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat
tmp=$(mktemp -d /tmp/umbra-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "# $(systemd-analyze --version | head -n 1)"

# ---------------------------------------------------------------- copies with built executables
mkdir -p "$tmp/units"
for s in $services; do
    bin=$build/services/$s/umbra-$s
    [ -x "$bin" ] || { echo "FAIL: $bin is not built"; exit 1; }
    unit=$units/umbra-$s.service
    [ -f "$unit" ] || { fail "umbra-$s.service exists in deploy/systemd"; continue; }
    sed "s#/usr/bin/umbra-$s\\b#$bin#g" "$unit" >"$tmp/units/umbra-$s.service"
    if grep -q '/usr/bin/' "$tmp/units/umbra-$s.service"; then
        fail "umbra-$s.service names a /usr/bin path other than its own executable"
    fi
done
cp "$units/umbra.target" "$tmp/units/"

# ---------------------------------------------------------------- systemd-analyze verify
verify () {     # prints what verify printed; status 0 when it printed nothing and exited 0
    local out rc=0
    out=$(cd "$tmp/units" && systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
    printf '%s' "$out"
    [ $rc -eq 0 ] && [ -z "$out" ]
}
for unit in "$tmp"/units/*.service "$tmp/units/umbra.target"; do
    name=$(basename "$unit")
    if out=$(verify "$unit"); then
        ok "systemd-analyze verify $name: no warning, no error"
    else
        fail "systemd-analyze verify $name"
        while IFS= read -r line; do echo "#   $line"; done <<<"$out"
    fi
done
# Controls: the same check must see an unknown key and a missing executable
mkdir -p "$tmp/control"
sed 's/^NoNewPrivileges=yes$/NoNewPrivileges=yes\nProtectSystm=strict/' "$units/umbra-auth.service" \
    | sed "s#/usr/bin/umbra-auth#$build/services/auth/umbra-auth#" >"$tmp/control/umbra-typo.service"
control () {    # FILE EXPECTED WHAT: verify must complain, naming EXPECTED
    local out
    if out=$(verify "$1"); then
        fail "control: verify must report $3"
    elif grep -qF "$2" <<<"$out"; then
        ok "control: verify reports $3"
    else
        fail "control: verify reported something else than $3: $out"
    fi
}
control "$tmp/control/umbra-typo.service" "Unknown key 'ProtectSystm'" "an unknown key"
sed 's#/usr/bin/umbra-auth#/nonexistent/umbra-auth#' "$units/umbra-auth.service" >"$tmp/control/umbra-nobin.service"
control "$tmp/control/umbra-nobin.service" "/nonexistent/umbra-auth" "a missing executable"

# ---------------------------------------------------------------- the units' wiring
setting () { sed -n "s/^$2=//p" "$1"; }     # every value of a key, one a line
after_of () { setting "$1" After | tr ' ' '\n' | { grep '^umbra-' || true; } | sort | tr '\n' ' ' | sed 's/ $//'; }
declare -A expect_after=(
    [auth]=""
    [certs]="umbra-auth.service"
    [billing]="umbra-auth.service"
    [backends]="umbra-auth.service umbra-billing.service umbra-certs.service"
    [computations]="umbra-auth.service umbra-billing.service umbra-certs.service"
    [gateway]="umbra-auth.service umbra-backends.service umbra-billing.service umbra-certs.service umbra-computations.service"
)
# Wants= pulls in only what every deployment runs: billing may be disabled (billing.enabled = false)
declare -A expect_wants=(
    [auth]=""
    [certs]="umbra-auth.service"
    [billing]="umbra-auth.service"
    [backends]="umbra-auth.service umbra-certs.service"
    [computations]="umbra-auth.service umbra-certs.service"
    [gateway]="umbra-auth.service umbra-certs.service"
)
for s in $services; do
    u=$units/umbra-$s.service
    problems=""
    [ "$(setting "$u" ExecStart)" = "/usr/bin/umbra-$s --config /etc/umbra/umbra.conf --state /var/lib/umbra" ] \
        || problems+=" ExecStart"
    [ "$(setting "$u" Type)" = simple ] || problems+=" Type"
    [ "$(setting "$u" Restart)" = on-failure ] || problems+=" Restart"
    [ "$(setting "$u" User)" = umbra ] && [ "$(setting "$u" Group)" = umbra ] || problems+=" User/Group"
    [ "$(setting "$u" StateDirectory)" = umbra ] && [ "$(setting "$u" StateDirectoryMode)" = 0700 ] \
        || problems+=" StateDirectory"
    [ "$(setting "$u" ReadWritePaths)" = /var/lib/umbra ] || problems+=" ReadWritePaths"
    [ "$(setting "$u" UMask)" = 0077 ] || problems+=" UMask"
    [ "$(setting "$u" PartOf)" = umbra.target ] && [ "$(setting "$u" WantedBy)" = umbra.target ] \
        || problems+=" PartOf/WantedBy"
    [ "$(setting "$u" Environment)" = UMBRA_LOG_FORMAT=json ] || problems+=" Environment"
    [ -z "$(setting "$u" CapabilityBoundingSet)" ] && grep -q '^CapabilityBoundingSet=$' "$u" \
        || problems+=" CapabilityBoundingSet"
    [ -z "$(setting "$u" AmbientCapabilities)" ] && grep -q '^AmbientCapabilities=$' "$u" \
        || problems+=" AmbientCapabilities"
    families="AF_UNIX AF_INET AF_INET6 AF_NETLINK"
    [ "$s" = backends ] && families+=" AF_VSOCK"
    [ "$(setting "$u" RestrictAddressFamilies)" = "$families" ] || problems+=" RestrictAddressFamilies"
    [ "$(after_of "$u")" = "${expect_after[$s]}" ] || problems+=" After=($(after_of "$u"))"
    wants=$(setting "$u" Wants | tr ' ' '\n' | { grep '^umbra-' || true; } | sort | tr '\n' ' ' | sed 's/ $//')
    [ "$wants" = "${expect_wants[$s]}" ] || problems+=" Wants=($wants)"
    if [ "$s" = backends ]; then
        [ "$(setting "$u" SupplementaryGroups)" = "libvirt libvirt-qemu" ] || problems+=" SupplementaryGroups"
    else
        [ -z "$(setting "$u" SupplementaryGroups)" ] || problems+=" SupplementaryGroups"
    fi
    # the flags ExecStart passes are flags the executable takes
    for flag in $(setting "$u" ExecStart | tr ' ' '\n' | grep '^--'); do
        "$build/services/$s/umbra-$s" --help | grep -q -- "$flag " || problems+=" $flag(not in --help)"
    done
    if [ -z "$problems" ]; then
        ok "umbra-$s.service: umbra:umbra, /var/lib/umbra 0700, umbra.target, JSON logs, no capabilities, order after ${expect_after[$s]:-nothing}; wants ${expect_wants[$s]:-nothing}"
    else
        fail "umbra-$s.service wiring:$problems"
    fi
done
also=$(setting "$units/umbra.target" Also | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$also" = "umbra-auth.service umbra-backends.service umbra-billing.service umbra-certs.service umbra-computations.service umbra-gateway.service" ] \
   && [ "$(setting "$units/umbra.target" WantedBy)" = multi-user.target ]; then
    ok "umbra.target: enabling it enables the six services (Also=), wanted by multi-user.target"
else
    fail "umbra.target: Also= is '$also', WantedBy= is '$(setting "$units/umbra.target" WantedBy)'"
fi

# Every UMBRA_* variable the units set is a setting (an unknown one stops a service with exit 2)
mapfile -t envs < <(cat "$units"/*.service | sed -n 's/^Environment=//p' | tr ' ' '\n' | grep '^UMBRA_' | sort -u)
if [ "${#envs[@]}" -gt 0 ] && out=$(env -i PATH="$PATH" HOME="$tmp" "${envs[@]}" "$build/cli/umbra" config 2>&1) \
   && grep -q '^log.format = json$' <<<"$out"; then
    ok "the units' environment (${envs[*]}) is made of known settings"
else
    fail "the units' environment is refused by umbra config: $out"
fi
# The example settings file is valid as it is
if out=$("$build/cli/umbra" config --config "$units/umbra.conf.example" 2>&1) \
   && grep -q '^gateway.listen = 0.0.0.0:8080$' <<<"$out"; then
    ok "umbra.conf.example loads (umbra config --config ...)"
else
    fail "umbra.conf.example: $out"
fi
# Settings the example does not mention (information only: a new setting must not break this
# test; the example shows the ones an operator of a TEE host tunes)
missing=""
for key in $("$build/cli/umbra" config | sed -n 's/^\([a-z_]*\)\.\([a-z_]*\) = .*/\1.\2/p'); do
    section=${key%%.*} name=${key#*.}
    awk -v s="[$section]" -v k="$name" '
        /^\[/ { in_s = ($0 == s) } in_s && $0 ~ "^#?" k " =( |$)" { found = 1 } END { exit !found }' \
        "$units/umbra.conf.example" || missing+=" $key"
done
echo "# settings umbra.conf.example does not show:${missing:- none}"

# ---------------------------------------------------------------- sysusers and tmpfiles, in a temporary root
sysroot=$tmp/root
mkdir -p "$sysroot/etc"
if out=$(systemd-sysusers --root="$sysroot" "$units/umbra.sysusers.conf" 2>&1) \
   && entry=$(grep '^umbra:' "$sysroot/etc/passwd") \
   && [ "$(cut -d: -f6,7 <<<"$entry")" = "/var/lib/umbra:/usr/sbin/nologin" ] \
   && grep -q '^umbra:' "$sysroot/etc/group" \
   && [ "$(grep -c . "$sysroot/etc/group")" -eq 1 ] \
   && [ "$(cut -d: -f3 <<<"$entry")" -lt 1000 ]; then
    ok "umbra.sysusers.conf: a system user umbra (uid $(cut -d: -f3 <<<"$entry")), home /var/lib/umbra, no shell, its own group and no other"
else
    fail "umbra.sysusers.conf in a temporary root: $out $(cat "$sysroot/etc/passwd" 2>/dev/null)"
fi
uid=$(sed -n 's/^umbra:x:\([0-9]*\):.*/\1/p' "$sysroot/etc/passwd" 2>/dev/null || true)
gid=$(sed -n 's/^umbra:x:\([0-9]*\):.*/\1/p' "$sysroot/etc/group" 2>/dev/null || true)
if [ "$(id -u)" -ne 0 ]; then
    echo "# skip - umbra.tmpfiles.conf: the ownership it sets needs root"
elif out=$(systemd-tmpfiles --root="$sysroot" --create "$units/umbra.tmpfiles.conf" 2>&1); then
    got=$(cd "$sysroot" && stat -c '%n %a %u:%g' var/lib/umbra etc/umbra etc/umbra/umbra.conf var/cache/umbra/eos 2>&1)
    want="var/lib/umbra 700 $uid:$gid
etc/umbra 750 0:$gid
etc/umbra/umbra.conf 640 0:$gid
var/cache/umbra/eos 755 0:0"
    if [ "$got" = "$want" ] && [ ! -s "$sysroot/etc/umbra/umbra.conf" ] && [ -n "$uid" ]; then
        ok "umbra.tmpfiles.conf: /var/lib/umbra 0700 umbra:umbra, /etc/umbra 0750 and an empty umbra.conf 0640 root:umbra, /var/cache/umbra/eos 0755"
    else
        fail "umbra.tmpfiles.conf made: $(tr '\n' ';' <<<"$got") (wanted $(tr '\n' ';' <<<"$want"))"
    fi
else
    fail "systemd-tmpfiles --create umbra.tmpfiles.conf: $out"
fi
# The empty settings file tmpfiles makes when there is none must mean "every default" (a
# service refuses a file it cannot parse with exit 2, and would then not be restarted)
if [ "$(id -u)" -ne 0 ]; then
    echo "# skip - the empty umbra.conf: tmpfiles did not run"
elif [ -f "$sysroot/etc/umbra/umbra.conf" ] \
   && "$build/cli/umbra" config --config "$sysroot/etc/umbra/umbra.conf" >/dev/null 2>&1; then
    ok "the empty umbra.conf that tmpfiles makes is a valid settings file (every default)"
else
    fail "the empty umbra.conf is refused"
fi

# ---------------------------------------------------------------- systemd-analyze security
# The exposures the analyser still finds, and why each stays (the rest of its checks pass):
known_all="
SystemCallFilter=~@resources
RootDirectory=/RootImage=
RestrictAddressFamilies=~AF_NETLINK
RestrictAddressFamilies=~AF_UNIX
RestrictAddressFamilies=~AF_(INET|INET6)
PrivateNetwork=
IPAddressDeny=
DeviceAllow="
#   @resources: libzmq calls sched_setscheduler() for each I/O thread and aborts if it fails.
#   RootDirectory: the services run from the host's /usr (ProtectSystem=strict makes it read-only).
#   AF_NETLINK: libzmq's bind resolves addresses with getifaddrs() and aborts without it.
#   AF_UNIX, AF_INET(6), PrivateNetwork: they are network services.
#   IPAddressDeny: endpoints are settings and may be on other hosts (docs/tee-hosts.md has a
#   drop-in for one host).
#   DeviceAllow: char-rtc read access, which ProtectClock=yes itself adds.
known_backends="$known_all
SupplementaryGroups=
PrivateUsers=
RestrictAddressFamilies=~…"
#   umbra-backends: the groups libvirt and libvirt-qemu (libvirtd's socket, the VMs' channel
#   sockets); no PrivateUsers= so that those groups stay the host's; AF_VSOCK ("exotic").
for s in $services; do
    unit=$tmp/units/umbra-$s.service
    text=$(systemd-analyze security --offline=yes "$unit" 2>&1) || true
    level=$(sed -n 's/.*Overall exposure level for umbra-[a-z]*\.service: \([0-9.]*\) \(.*\)$/\1 \2/p' <<<"$text")
    score=${level%% *}
    if [ -z "$score" ]; then
        fail "systemd-analyze security --offline=yes umbra-$s.service printed no exposure level"
        tail -n 5 <<<"$text" | while IFS= read -r line; do echo "#   $line"; done
        continue
    fi
    if awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s + 0 <= m + 0) }'; then
        ok "umbra-$s.service exposure $level (at most $max_exposure)"
    else
        fail "umbra-$s.service exposure $level is above $max_exposure"
    fi
    known=$known_all
    [ "$s" = backends ] && known=$known_backends
    unset_names=$(systemd-analyze security --offline=yes --json=short "$unit" \
                  | jq -r '.[] | select(.set == false) | .name' | sort)
    extra=$(comm -23 <(echo "$unset_names") <(grep . <<<"$known" | sort))
    if [ -n "$unset_names" ] && [ -z "$extra" ]; then
        ok "umbra-$s.service: the analyser finds only the known exposures ($(grep -c . <<<"$unset_names"))"
    else
        fail "umbra-$s.service: exposures beyond the known ones: $(tr '\n' ' ' <<<"${extra:-(no JSON)}")"
    fi
done
# Control: a unit that lost one line of hardening must fail the second check
sed '/^MemoryDenyWriteExecute=/d' "$tmp/units/umbra-auth.service" >"$tmp/control/umbra-lax.service"
unset_names=$(systemd-analyze security --offline=yes --json=short "$tmp/control/umbra-lax.service" \
              | jq -r '.[] | select(.set == false) | .name' | sort)
if comm -23 <(echo "$unset_names") <(grep . <<<"$known_all" | sort) | grep -qx 'MemoryDenyWriteExecute='; then
    ok "control: without MemoryDenyWriteExecute= the analyser reports the new exposure"
else
    fail "control: a unit without MemoryDenyWriteExecute= passed the exposure check"
fi

echo "$((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
