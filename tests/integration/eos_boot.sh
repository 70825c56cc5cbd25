#!/usr/bin/env bash
# eos_boot.sh - builds eos (the guest image: guest/eos/build-image), boots it with QEMU (TCG, no
# network device, a virtio-serial port org.umbra.link.0 on a unix socket), reaches the agent through
# a host-side umbra-bridge and runs a small computation with the real `umbra` CLI.
#
#     tests/integration/eos_boot.sh
#
# Checks:
#   - the build is reproducible (a second build into another directory gives the same SHA-256) and idempotent
#     (an unchanged input is not rebuilt); SHA256SUMS verifies;
#   - the image holds no getty/login and no network driver; the guest's serial log lists only
#     `lo` as network interface and shows the agent starting; boot-to-agent-ready time is printed;
#   - through the bridge: `umbra attestation get --insecure-dev` says platform none; the agent is
#     Idle; agent.control.manifest over the `control` stream (CURVE, with the control key passed on
#     the kernel command line) moves it to ReceivingAlgorithm, and the same request with another
#     key is refused (403); `umbra algo` / `umbra data` / `umbra result` run the seed linear
#     regression (tests/integration/seed/) in the guest's python3 and the result matches awk's fit;
#   - a guest booted with umbra.attestation=auto (no TEE here) refuses to start the agent and
#     powers off by itself.
# TEST_BUILD_DIR (default build) names the build directory; EOS_OUT (default
# /var/cache/umbra/eos) the image directory; TMPDIR the work directory; EOS_KEEP=1 keeps it.
# If this machine cannot run QEMU the test says what is missing and exits 0 (skip).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
bridge_bin=$build/guest/bridge/umbra-bridge
eos_out=${EOS_OUT:-/var/cache/umbra/eos}
seed=$root/tests/integration/seed
python=/usr/bin/python3
qemu="qemu-system-x86_64"

checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () { echo "FAIL: $*" >&2; [ -z "${work:-}" ] || [ ! -s "$work/serial.log" ] || { echo "--- serial log:" >&2; tail -n 30 "$work/serial.log" >&2; }; exit 1; }
skip () { echo "skip - eos_boot: $*"; exit 0; }
now () { date +%s.%N; }
since () { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

command -v "$qemu" >/dev/null || skip "$qemu is not installed (apt-get install qemu-system-x86)"
for tool in "$umbra" "$bridge_bin" "$build/guest/agent/umbra-agent"; do
    [ -x "$tool" ] || fail "$tool is not built"
done
command -v jq >/dev/null || fail "jq is needed"
$python -c 'import zmq, msgpack' 2>/dev/null || fail "python3-zmq and python3-msgpack are needed"

work=$(mktemp -d "${TMPDIR:-/tmp}/umbra-eos.XXXXXX")
qemu_pid=
bridge_pid=
cleanup () {
    for pid in $bridge_pid $qemu_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $bridge_pid $qemu_pid; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${EOS_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- the image
started=$(now)
"$root/guest/eos/build-image" "$build" "$eos_out" >"$work/build.out" 2>"$work/build.err" \
    || { cat "$work/build.err" >&2; fail "build-image"; }
cat "$work/build.out"
ok "build-image made the image in $(since "$started") s"
(cd "$eos_out" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not verify"
first=$(cat "$eos_out/SHA256SUMS")
for name in vmlinux initramfs.cpio.gz cmdline; do
    grep -q "^[0-9a-f]\{64\}  $name\$" <<<"$first" || fail "SHA256SUMS lacks $name"
    grep -q "sha256:$(sed -n "s/  $name\$//p" <<<"$first")" "$work/build.out" || fail "the build did not print $name's SHA-256"
done
ok "SHA256SUMS verifies and the build printed the SHA-256 of kernel, initramfs and command line"

started=$(now)
"$root/guest/eos/build-image" "$build" "$eos_out" >"$work/build2.out" 2>"$work/build2.err" || fail "build-image again"
grep -q "up to date" "$work/build2.err" || fail "an unchanged image was rebuilt: $(cat "$work/build2.err")"
ok "unchanged inputs: not rebuilt ($(since "$started") s)"
# A second build into another directory (with a copy of the cached kernel package)
started=$(now)
mkdir -p "$work/eos2/debs"
cp "$eos_out"/debs/linux-image-*.deb "$work/eos2/debs/"
"$root/guest/eos/build-image" "$build" "$work/eos2" >"$work/build3.out" 2>"$work/build3.err" \
    || { cat "$work/build3.err" >&2; fail "build-image into $work/eos2"; }
! grep -q "downloading" "$work/build3.err" || fail "the cached kernel package was downloaded again"
[ "$(cat "$work/eos2/SHA256SUMS")" = "$first" ] \
    || { diff <(echo "$first") "$work/eos2/SHA256SUMS" >&2; fail "a second build of the same inputs differs"; }
rm -rf "$work/eos2"
ok "reproducible: a second build elsewhere ($(since "$started") s) gives the same SHA-256 for all three"

# The image's contents: no getty, no login, no network driver; the agent, bridge, python3, init
gzip -dc "$eos_out/initramfs.cpio.gz" | cpio -t --quiet >"$work/files"
for want in init usr/bin/umbra-agent usr/bin/umbra-bridge usr/bin/python3.11 usr/bin/busybox usr/bin/tar \
            etc/passwd etc/group; do
    grep -qx "$want" "$work/files" || fail "the image lacks /$want"
done
for bad in getty login agetty sulogin telnetd sshd dropbear udhcpc; do
    ! grep -q "/$bad\$" "$work/files" || fail "the image holds $(grep "/$bad\$" "$work/files" | head -n 1)"
done
! grep -q '/kernel/drivers/net/' "$work/files" || fail "the image holds a network driver: $(grep '/kernel/drivers/net/' "$work/files" | head -n 1)"
mkdir "$work/etc"
(cd "$work/etc" && gzip -dc "$eos_out/initramfs.cpio.gz" | cpio -id --quiet etc/passwd etc/group init)
grep -qx 'nobody:x:65534:65534:.*' "$work/etc/etc/passwd" && grep -qx 'nogroup:x:65534:' "$work/etc/etc/group" \
    || fail "/etc/passwd or /etc/group lacks nobody/nogroup 65534"
! grep -v '^[[:space:]]*#' "$work/etc/init" | grep -qwE 'getty|agetty|login|sh -i|exec sh|/bin/sh' \
    || fail "the init starts a getty, a login or a shell"
ok "the image: agent, bridge, python3, busybox, GNU tar, nobody/nogroup; no getty, login or network driver ($(wc -l <"$work/files") files)"

# ---------------------------------------------------------------- boot
[ -r /dev/kvm ] && echo "note: /dev/kvm exists but this test uses TCG (MACHINE-NOTES: KVM guests fail here)"
read -r control_public control_secret < <($python -c '
import zmq; p, s = zmq.curve_keypair(); print(p.decode(), s.decode())')
[ ${#control_public} = 40 ] || fail "no CURVE key pair"
# boot NAME EXTRA_CMDLINE: starts QEMU in the background; sets qemu_pid and boot_started
boot () {
    local name=$1 extra=$2
    rm -f "$work/$name.sock" "$work/$name.serial"
    boot_started=$(now)
    "$qemu" -accel tcg -M pc -cpu max -m 512 -smp 1 -nodefaults -no-user-config -nographic -no-reboot \
        -kernel "$eos_out/vmlinux" -initrd "$eos_out/initramfs.cpio.gz" \
        -append "$(cat "$eos_out/cmdline") $extra" \
        -serial "file:$work/$name.serial" -monitor none -nic none \
        -device virtio-serial -chardev "socket,path=$work/$name.sock,server=on,wait=off,id=c0" \
        -device virtserialport,chardev=c0,name=org.umbra.link.0 \
        >"$work/$name.qemu.out" 2>&1 &
    qemu_pid=$!
}
boot guest "umbra.attestation=none umbra.control_key=$control_public"
ln -sf "$work/guest.serial" "$work/serial.log"
waited=0
until grep -q "umbra-agent: listening on" "$work/guest.serial" 2>/dev/null \
      && grep -q "eos: starting umbra-bridge" "$work/guest.serial"; do
    kill -0 "$qemu_pid" 2>/dev/null || { cat "$work/guest.qemu.out" >&2; fail "QEMU exited during boot"; }
    [ $waited -lt 1200 ] || fail "the agent did not start within 120 s"
    sleep 0.05; waited=$((waited + 1))
done
boot_s=$(since "$boot_started")
# the serial log without carriage returns, each "eos:" message on its own line (SeaBIOS ends without one)
serial () { tr -d '\r' <"$work/$1.serial" | sed 's/\(.\)eos: /\1\neos: /'; }
init_at=$(serial guest | sed -n 's/^eos: init started at \([0-9.]*\) s.*/\1/p')
agent_at=$(serial guest | sed -n 's/^eos: starting umbra-agent .* at \([0-9.]*\) s$/\1/p')
bridge_at=$(serial guest | sed -n 's/^eos: starting umbra-bridge at \([0-9.]*\) s$/\1/p')
ok "guest booted: QEMU start to agent listening and bridge started ${boot_s} s (kernel uptime: init ${init_at} s, agent started ${agent_at} s, bridge started ${bridge_at} s)"
serial guest | grep -qx "eos: network interfaces: lo " \
    || fail "the guest has network interfaces besides lo: $(serial guest | grep 'network interfaces')"
! serial guest | grep -q "WARNING: unexpected network interface" || fail "unexpected network interface"
serial guest | grep -qx "eos: link: /dev/vport[0-9]*p[0-9]* (org.umbra.link.0)" || fail "the init did not find the port"
! grep -qi "login:" "$work/guest.serial" || fail "a login prompt on the console"
ok "serial log: only lo, the port org.umbra.link.0 found, no login prompt"

# ---------------------------------------------------------------- the host side of the bridge
"$bridge_bin" --link "unix-connect:$work/guest.sock" --listen control=tcp:127.0.0.1:0 \
    --listen agent=tcp:127.0.0.1:0 --listen attest=tcp:127.0.0.1:0 \
    >"$work/bridge.out" 2>"$work/bridge.err" &
bridge_pid=$!
waited=0
until grep -q "umbra-bridge: ready" "$work/bridge.out" 2>/dev/null; do
    kill -0 "$bridge_pid" 2>/dev/null || { cat "$work/bridge.err" >&2; fail "the host umbra-bridge exited"; }
    [ $waited -lt 200 ] || fail "the host umbra-bridge is not ready within 10 s"
    sleep 0.05; waited=$((waited + 1))
done
endpoint_of () { sed -n "s/.* $1=\(tcp:\/\/[0-9.]*:[0-9]*\).*/\1/p" "$work/bridge.out" | head -n 1; }
control_ep=$(endpoint_of control); agent_ep=$(endpoint_of agent); attest_ep=$(endpoint_of attest)
[ -n "$control_ep" ] && [ -n "$agent_ep" ] && [ -n "$attest_ep" ] || fail "cannot read the endpoints: $(cat "$work/bridge.out")"
cli=(--agent "$agent_ep" --attest-endpoint "$attest_ep" --insecure-dev)

# The first attestation through the link (waits for the link to come up)
waited=0
until "$umbra" attestation get "${cli[@]}" --json --out "$work/attestation.json" --timeout 5 2>"$work/err" >/dev/null; do
    [ $waited -lt 30 ] || { cat "$work/err" "$work/bridge.err" >&2; fail "attestation get through the bridge"; }
    sleep 0.5; waited=$((waited + 1))
done
ready_s=$(since "$boot_started")
[ "$(jq -r .platform "$work/attestation.json")" = none ] && [ "$(jq -r .insecure "$work/attestation.json")" = true ] \
    || fail "attestation get does not say platform none: $(cat "$work/attestation.json")"
agent_key=$(jq -r .agent_key "$work/attestation.json")
grep -qF "key $agent_key" "$work/guest.serial" || fail "the attested key $agent_key is not the key the guest's agent printed"
ok "umbra attestation get through the bridge: platform none, agent key $agent_key (QEMU start to first attestation ${ready_s} s)"

state=$("$umbra" agent status "${cli[@]}" --json 2>"$work/err" | jq -r .state) || true
[ "$state" = Idle ] || { cat "$work/err" >&2; fail "the agent is in '$state', expected Idle"; }
ok "umbra agent status through the bridge: Idle (no manifest yet)"

# ---------------------------------------------------------------- the manifest, over the control stream
mkdir -p "$work/keys"
for pair in algo:ed25519 data1:ecdsa data2:rsa consumer:ed25519; do
    "$umbra" keys generate --type "${pair#*:}" --out "$work/keys/${pair%%:*}" >/dev/null || fail "keys generate $pair"
done
cp "$seed/linreg.py" "$seed/data1.csv" "$seed/data2.csv" "$work/"
jq -n --arg ah "$("$umbra" checksum "$work/linreg.py")" --rawfile ak "$work/keys/algo.pub" \
      --arg h1 "$("$umbra" checksum "$work/data1.csv")" --rawfile k1 "$work/keys/data1.pub" \
      --arg h2 "$("$umbra" checksum "$work/data2.csv")" --rawfile k2 "$work/keys/data2.pub" \
      --rawfile c "$work/keys/consumer.pub" \
    '{id: "eos-linreg", name: "eos boot", description: "umbra eos_boot.sh",
      algorithm: {hash: $ah, userKey: $ak, type: "python"},
      datasets: [{hash: $h1, userKey: $k1, filename: "data1.csv"}, {hash: $h2, userKey: $k2, filename: "data2.csv"}],
      result_consumers: [{userKey: $c}],
      agent_config: {port: "7002", attested_tls: true}, run_timeout_s: 300}' >"$work/manifest.json"

cat >"$work/control.py" <<'EOF'
"""control.py ENDPOINT AGENT_KEY MANIFEST: agent.control.manifest over CURVE with the control key
(CONTROL_PUBLIC/CONTROL_SECRET), after checking that another key is refused."""
import os, sys, uuid
import msgpack, zmq

endpoint, agent_key, manifest = sys.argv[1], sys.argv[2].encode(), open(sys.argv[3]).read()
context = zmq.Context()

def call(public, secret, op, body):
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    socket.curve_publickey, socket.curve_secretkey, socket.curve_serverkey = public, secret, agent_key
    socket.connect(endpoint)
    header = {"v": 1, "id": uuid.uuid4().hex, "op": op, "deadline_ms": 20000}
    socket.send_multipart([msgpack.packb(header), msgpack.packb(body)])
    if not socket.poll(30000):
        sys.exit("no reply to %s within 30 s" % op)
    frames = socket.recv_multipart()
    socket.close()
    return msgpack.unpackb(frames[0], raw=False), msgpack.unpackb(frames[1], raw=False)

stranger = zmq.curve_keypair()
header, body = call(stranger[0], stranger[1], "agent.control.manifest", {"manifest": manifest})
if header.get("status") != 403:
    sys.exit("a stranger's agent.control.manifest got %r, expected 403" % header)
print("a stranger's key: %d %s" % (header["status"], header.get("code")))
header, body = call(os.environ["CONTROL_PUBLIC"].encode(), os.environ["CONTROL_SECRET"].encode(),
                    "agent.control.manifest", {"manifest": manifest})
if header.get("status") != 200:
    sys.exit("agent.control.manifest: %r %r" % (header, body))
print("state %s" % body.get("state"))
EOF
CONTROL_PUBLIC=$control_public CONTROL_SECRET=$control_secret \
    $python "$work/control.py" "$control_ep" "$agent_key" "$work/manifest.json" >"$work/control.out" 2>&1 \
    || { cat "$work/control.out" >&2; fail "the control client"; }
grep -q "a stranger's key: 403" "$work/control.out" || fail "a stranger's manifest was not refused"
grep -qx "state ReceivingAlgorithm" "$work/control.out" || fail "after the manifest: $(cat "$work/control.out")"
ok "agent.control.manifest over the control stream: a stranger's key refused (403), the control key's accepted: ReceivingAlgorithm"

# ---------------------------------------------------------------- the computation
started=$(now)
"$umbra" algo "$work/linreg.py" --key "$work/keys/algo.key" --type python "${cli[@]}" >/dev/null 2>"$work/err" \
    || { cat "$work/err" >&2; fail "umbra algo"; }
ok "umbra algo linreg.py: uploaded ($(since "$started") s)"
for n in 1 2; do
    started=$(now)
    "$umbra" data "$work/data$n.csv" --key "$work/keys/data$n.key" "${cli[@]}" >/dev/null 2>"$work/err" \
        || { cat "$work/err" >&2; fail "umbra data data$n.csv"; }
    ok "umbra data data$n.csv: uploaded ($(since "$started") s)"
done
started=$(now)
waited=0
while true; do
    state=$("$umbra" agent status "${cli[@]}" --json 2>/dev/null | jq -r .state) || state=
    case $state in
        ConsumingResults) break ;;
        Failed) fail "the run failed: $("$umbra" agent status "${cli[@]}" --json 2>/dev/null | jq -r .reason)" ;;
    esac
    [ $waited -lt 240 ] || fail "the agent stayed in $state"
    sleep 0.5; waited=$((waited + 1))
done
ok "the algorithm ran in the guest's python3: ConsumingResults ($(since "$started") s)"
"$umbra" result --key "$work/keys/consumer.key" "${cli[@]}" -o "$work/result" >/dev/null 2>"$work/err" \
    || { cat "$work/err" >&2; fail "umbra result"; }
read -r want_slope want_intercept want_n < <(tail -q -n +2 "$work/data1.csv" "$work/data2.csv" | awk -F, '
    { n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
    END { slope = (n * sxy - sx * sy) / (n * sxx - sx * sx); printf "%.12f %.12f %d\n", slope, (sy - slope * sx) / n, n }')
jq -e --argjson s "$want_slope" --argjson i "$want_intercept" --argjson n "$want_n" \
    '((.slope - $s) | fabs) < 1e-9 and ((.intercept - $i) | fabs) < 1e-9 and .n == $n' "$work/result/model.json" >/dev/null \
    || fail "model.json $(cat "$work/result/model.json") differs from awk's slope $want_slope intercept $want_intercept"
state=$("$umbra" agent status "${cli[@]}" --json 2>/dev/null | jq -r .state)
[ "$state" = Complete ] || fail "after the only consumer fetched, the agent is in $state"
ok "umbra result: slope $(jq .slope "$work/result/model.json") intercept $(jq .intercept "$work/result/model.json") n $want_n match awk's fit; Complete"

kill -TERM "$bridge_pid" 2>/dev/null; wait "$bridge_pid" 2>/dev/null || true; bridge_pid=
kill -TERM "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=

# ---------------------------------------------------------------- fail closed: no TEE, attestation auto
boot auto "umbra.attestation=auto"
waited=0
while kill -0 "$qemu_pid" 2>/dev/null; do
    [ $waited -lt 1200 ] || fail "a guest with attestation auto and no TEE did not power off within 120 s"
    sleep 0.1; waited=$((waited + 1))
done
wait "$qemu_pid" 2>/dev/null || true; qemu_pid=
grep -q "no TEE found" "$work/auto.serial" || { tail -n 20 "$work/auto.serial" >&2; fail "the agent did not say it found no TEE"; }
serial auto | grep -q "^eos: umbra-agent exited (status [1-9][0-9]*) - powering off" || fail "the init did not power off"
! grep -q "umbra-agent: listening on" "$work/auto.serial" || fail "the agent listened without a TEE"
ok "attestation auto without a TEE: the agent refuses, the guest powers off ($(since "$boot_started") s)"

echo "eos_boot: all $checks checks passed (QEMU start to agent listening ${boot_s} s, to first attestation through the bridge ${ready_s} s)"
