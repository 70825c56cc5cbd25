#!/usr/bin/env bash
# backends_process.sh - the backends service's process driver end to end: umbra-auth and
# umbra-backends as separate processes, a process host, a CVM whose agent (umbra-agent,
# attestation none) is reached only through the bridge, and the participants' real CLI
# (`umbra algo/data/result --agent ... --attest-endpoint ... --insecure-dev`) running the seed
# scenario (tests/integration/seed: linear regression over two datasets) through the CVM's
# published participant ports. The mesh calls to backends are made by a small client written
# from proto/msgpack/envelope.md and backends.md (Debian's python3-zmq and python3-msgpack).
# Checks:
#   - bad input: a non-libvirt URI, a duplicate host, an unknown TEE, impossible sizes (4xx);
#   - create with the manifest: the agent attests (none, accepted: insecure_dev host), the
#     manifest is delivered, the CVM is Running; algorithm, datasets, result through the ports;
#   - the agent's events arrive in order through backends.events.pull (up to Complete);
#   - destroy: Destroyed, the agent child is gone;
#   - fault: the agent child is killed -> the CVM is Failed "the agent process died (signal 9)";
#   - fault: the agent child is stopped (SIGSTOP) -> Failed "the agent stopped answering".
# With BACKENDS_HOST_URI=qemu:///system (a running libvirtd and the guest image in
# ${EOS_OUT:-/var/cache/umbra/eos}; tests/integration/backends_libvirt.sh sets both up) the same
# scenario runs in a real VM (TCG, attestation none accepted on an insecure_dev host) through the
# virtio-serial link, and the faults are:
#   - umbra-backends is killed (SIGKILL) while the CVM runs and started again: the CVM is adopted
#     (same domain, no orphan, no second domain), its link reconnected, the participants carry on
#     and no event is lost (sequence numbers stay contiguous up to the agent's Complete);
#   - `virsh destroy` behind the service's back: Failed event, the domain is undefined;
#   - a second host whose libvirt cannot be reached any more (a qemu+unix URI through a socket
#     proxy that is then stopped): it is marked unreachable with the reason, and a CVM the
#     scheduler places goes to the reachable host.
# TEST_BUILD_DIR (default build) names the build directory; BACKENDS_KEEP=1 keeps the work dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
auth_bin=$build/services/auth/umbra-auth
backends_bin=$build/services/backends/umbra-backends
agent_bin=$build/guest/agent/umbra-agent
seed=$root/tests/integration/seed
python=/usr/bin/python3
host_uri=${BACKENDS_HOST_URI:-process:///}
case $host_uri in process:*) kind=process ;; *) kind=libvirt ;; esac
cvm_memory=${BACKENDS_CVM_MEMORY_MB:-1024}

for tool in "$umbra" "$auth_bin" "$backends_bin" "$agent_bin"; do
    [ -x "$tool" ] || { echo "backends_process: $tool is not built" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "backends_process: jq is needed" >&2; exit 1; }
$python -c 'import zmq, msgpack' 2>/dev/null \
    || { echo "backends_process: python3-zmq and python3-msgpack are needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/umbra-backends.XXXXXX")
pids=()
cleanup () {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "${BACKENDS_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

checks=0
ok () { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail () {
    echo "FAIL: $*" >&2
    for log in "$work"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }; done
    exit 1
}

free_port () {
    $python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- the services
state=$work/state
mkdir -p "$state"
export UMBRA_STATE_DIR=$state
export UMBRA_LOG_LEVEL=info
export UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$(free_port)
export UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$(free_port)
export UMBRA_BACKENDS_ENDPOINT=tcp://127.0.0.1:$(free_port)
export UMBRA_BACKENDS_PUB_ENDPOINT=tcp://127.0.0.1:$(free_port)
export UMBRA_BACKENDS_AGENT_PATH=$agent_bin
# No certs service runs here: agents' keys are not certified (said once per CVM in the log)
export UMBRA_BACKENDS_CERTIFY_AGENTS=false
# Only auth and backends run here: billing's gate on CVMs is tested in billing_rest.sh
export UMBRA_BILLING_ENABLED=false
export UMBRA_BACKENDS_AGENT_TIMEOUT_S=5
export UMBRA_BACKENDS_IMAGE_DIR=${EOS_OUT:-/var/cache/umbra/eos}
# libvirt offers KVM on the standard machine, but its nested KVM guests never reach init
# (measured: nothing on the serial console after 8 s, where TCG reaches init at 2.8 s)
export UMBRA_BACKENDS_NONE_ACCEL=${UMBRA_BACKENDS_NONE_ACCEL:-tcg}
if [ $kind = libvirt ]; then
    [ -s "$UMBRA_BACKENDS_IMAGE_DIR/vmlinux" ] || { echo "skip - no guest image in $UMBRA_BACKENDS_IMAGE_DIR (guest/eos/build-image)"; exit 0; }
    virsh -c "$host_uri" list >/dev/null 2>&1 || { echo "skip - libvirt at $host_uri does not answer"; exit 0; }
fi

"$auth_bin" >"$work/auth.log" 2>&1 &
pids+=($!)
umbra_domains () { virsh -c "$host_uri" list --all --name | grep '^umbra-' | sort | tr '\n' ' ' || true; }
[ $kind = process ] || initial_domains=$(umbra_domains)
start_backends () {
    "$backends_bin" >>"$work/backends.log" 2>&1 &
    backends_pid=$!
    pids+=($backends_pid)
}
start_backends

# ---------------------------------------------------------------- the mesh client
cat >"$work/mesh.py" <<'EOF'
"""A mesh client from proto/msgpack/envelope.md: python3 mesh.py OP JSON_BODY [TOKEN_FILE]
prints {"status": ..., "code": ..., "error": ..., "body": {...}} as JSON."""
import json, os, sys, time
import msgpack, zmq

def key_pair(path):
    public = secret = None
    for line in open(path):
        line = line.strip()
        if line.startswith("public-key"):
            public = line.split("=", 1)[1].strip().strip('"')
        elif line.startswith("secret-key"):
            secret = line.split("=", 1)[1].strip().strip('"')
    return public.encode(), secret.encode()

def server_key(state, name):
    for line in open(os.path.join(state, "keys", name + ".pub")):
        line = line.strip()
        if line.startswith("public-key"):
            return line.split("=", 1)[1].strip().strip('"').encode()

def main():
    op, body = sys.argv[1], json.loads(sys.argv[2])
    token = open(sys.argv[3]).read().strip() if len(sys.argv) > 3 else None
    state = os.environ["UMBRA_STATE_DIR"]
    service = os.environ.get("MESH_SERVICE") or op.split(".")[0]
    endpoint = os.environ["UMBRA_%s_ENDPOINT" % service.upper()]
    public, secret = key_pair(os.path.join(state, "keys", "gateway.key"))
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.curve_serverkey = server_key(state, service)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.linger = 0
    sock.connect(endpoint)
    timeout_ms = int(os.environ.get("MESH_TIMEOUT_MS", "10000"))
    header = {"v": 1, "id": "sh-%d" % os.getpid(), "op": op, "deadline_ms": timeout_ms}
    if token:
        header["token"] = token
    sock.send_multipart([msgpack.packb(header, use_bin_type=True),
                         msgpack.packb(body, use_bin_type=True)])
    if not sock.poll(timeout_ms + 1000, zmq.POLLIN):
        print(json.dumps({"status": 504, "error": "no reply"}))
        return
    frames = sock.recv_multipart()
    reply = msgpack.unpackb(frames[0], raw=False)
    out = msgpack.unpackb(frames[1], raw=False)
    print(json.dumps({"status": reply["status"], "code": reply.get("code"),
                      "error": reply.get("error"), "body": out}))

main()
EOF
mesh () { $python "$work/mesh.py" "$@"; }
# call OP JSON STATUS: the reply body, or fail
call () {
    local reply; reply=$(mesh "$1" "$2" "$work/token")
    [ "$(jq -r .status <<<"$reply")" = "$3" ] || fail "$1: expected $3, got $(jq -c 'del(.body)' <<<"$reply")"
    jq -c .body <<<"$reply"
}
# refused OP JSON STATUS PATTERN
refused () {
    local reply; reply=$(mesh "$1" "$2" "$work/token")
    [ "$(jq -r .status <<<"$reply")" = "$3" ] || fail "$1 $2: expected $3, got $(jq -c 'del(.body)' <<<"$reply")"
    jq -r .error <<<"$reply" | grep -q -- "$4" || fail "$1: error lacks '$4': $(jq -r .error <<<"$reply")"
    ok "$1 refused ($3): $(jq -r .error <<<"$reply" | cut -c1-120)"
}

# Both services answer sys.ping
waited=0
until [ "$(MESH_SERVICE=auth MESH_TIMEOUT_MS=500 mesh sys.ping '{}' | jq -r .status)" = 200 ] \
   && [ "$(MESH_SERVICE=backends MESH_TIMEOUT_MS=500 mesh sys.ping '{}' | jq -r .status)" = 200 ]; do
    kill -0 "$backends_pid" 2>/dev/null || fail "umbra-backends exited at start"
    [ $waited -lt 30 ] || fail "the services did not answer sys.ping within 30 s"
    waited=$((waited + 1))
done
ok "umbra-auth and umbra-backends run ($UMBRA_BACKENDS_ENDPOINT)"

# A user and a workspace
reply=$(mesh auth.users.register '{"username": "owner", "password": "owner-password-1"}')
[ "$(jq -r .status <<<"$reply")" = 201 ] || fail "auth.users.register: $reply"
reply=$(mesh auth.tokens.create '{"username": "owner", "password": "owner-password-1"}')
jq -r .body.access_token <<<"$reply" >"$work/token"
[ -s "$work/token" ] || fail "no token: $reply"
call auth.workspaces.create '{"name": "lab"}' 201 >/dev/null
ok "user owner, workspace lab"

# ---------------------------------------------------------------- bad input
refused backends.hosts.register '{"workspace": "lab", "name": "web", "uri": "http://example.com/"}' 422 "uri"
refused backends.hosts.register '{"workspace": "lab", "name": "p0", "uri": "process:///"}' 422 "insecure_dev"
# libvirt's first capabilities read can take seconds (QEMU probing): a longer deadline
host=$(MESH_TIMEOUT_MS=60000 call backends.hosts.register "{\"workspace\": \"lab\", \"name\": \"dev\", \"uri\": \"$host_uri\", \"insecure_dev\": true}" 201)
[ "$(jq -r .driver <<<"$host")" = $kind ] && [ "$(jq -r '.caps.tees[0]' <<<"$host")" = none ] \
    || fail "the $kind host: $host"
ok "$kind host registered: $(jq -c '{uri, driver, insecure_dev, caps}' <<<"$host")"
refused backends.hosts.register "{\"workspace\": \"lab\", \"name\": \"dev2\", \"uri\": \"$host_uri\", \"insecure_dev\": true}" 409 "registered already"
refused backends.cvms.create '{"workspace": "lab", "tee": "sgx", "vcpus": 1, "memory_mb": 256}' 422 "not a TEE type"
refused backends.cvms.create '{"workspace": "lab", "tee": "none", "vcpus": 100000, "memory_mb": 256}' 422 "vcpus"
refused backends.cvms.create '{"workspace": "lab", "tee": "none", "vcpus": 1, "memory_mb": 1}' 422 "memory_mb"
refused backends.cvms.create '{"workspace": "lab", "tee": "tdx", "vcpus": 1, "memory_mb": 256}' 409 "tdx"

# ---------------------------------------------------------------- keys and the manifest
mkdir -p "$work/keys"
for party in algo:ed25519 data1:ecdsa data2:rsa consumer:ed25519; do
    "$umbra" keys generate --type "${party#*:}" --out "$work/keys/${party%%:*}" >/dev/null \
        || fail "keys generate $party"
done
cp "$seed/linreg.py" "$seed/data1.csv" "$seed/data2.csv" "$work/"
jq -n --arg ah "$("$umbra" checksum "$work/linreg.py")" --rawfile ak "$work/keys/algo.pub" \
      --arg h1 "$("$umbra" checksum "$work/data1.csv")" --rawfile k1 "$work/keys/data1.pub" \
      --arg h2 "$("$umbra" checksum "$work/data2.csv")" --rawfile k2 "$work/keys/data2.pub" \
      --rawfile ck "$work/keys/consumer.pub" \
    '{id: "backends-seed", name: "backends process driver", description: "seed through a CVM",
      algorithm: {hash: $ah, userKey: $ak, type: "python"},
      datasets: [{hash: $h1, userKey: $k1, filename: "data1.csv"}, {hash: $h2, userKey: $k2, filename: "data2.csv"}],
      result_consumers: [{userKey: $ck}],
      agent_config: {port: "7002", attested_tls: true}, run_timeout_s: 120}' >"$work/manifest.json"

# ---------------------------------------------------------------- a CVM
body=$(jq -n --rawfile m "$work/manifest.json" \
    --argjson mem "$cvm_memory" \
    '{workspace: "lab", tee: "none", vcpus: 1, memory_mb: $mem, ttl_s: 600, computation: "seed", manifest: $m}')
started=$(date +%s.%N)
cvm=$(MESH_TIMEOUT_MS=60000 call backends.cvms.create "$body" 201)
id=$(jq -r .id <<<"$cvm")
ok "CVM $id created on $(jq -r .host <<<"$cvm"): $(jq -r .state <<<"$cvm")"

# wait_cvm ID STATE: pulls (and acknowledges) events until the CVM is in STATE; the events
# are appended to $work/ID.events, one JSON per line, their seq checked to grow by one
wait_cvm () {
    local id=$1 want=$2 after waited=0
    touch "$work/$id.events"
    while true; do
        after=$(tail -n 1 "$work/$id.events" | jq -r '.seq // 0' 2>/dev/null || echo 0)
        [ -n "$after" ] || after=0
        local page; page=$(call backends.events.pull "{\"workspace\": \"lab\", \"cvm\": \"$id\", \"after\": $after, \"wait_ms\": 2000}" 200)
        jq -c '.events[]' <<<"$page" >>"$work/$id.events"
        [ "$(jq -r .state <<<"$page")" = "$want" ] && break
        [ $waited -lt 60 ] || fail "CVM $id stayed $(jq -r .state <<<"$page"), expected $want"
        waited=$((waited + 1))
    done
    jq -s -e '[.[].seq] == [range(1; length + 1)]' "$work/$id.events" >/dev/null \
        || fail "the events of $id are not in order: $(jq -c .seq "$work/$id.events" | tr '\n' ' ')"
}
wait_cvm "$id" Running
grep -q "insecure: the agent's attestation is none" "$work/$id.events" || fail "no insecure warning event"
if [ $kind = libvirt ]; then
    grep -q "the VM runs under TCG" "$work/$id.events" || fail "no event saying the VM runs under TCG"
fi
cvm=$(call backends.cvms.get "{\"workspace\": \"lab\", \"cvm\": \"$id\"}" 200)
agent=$(jq -r .agent_endpoint <<<"$cvm")
attest=$(jq -r .attest_endpoint <<<"$cvm")
[ "$(jq -r .agent <<<"$cvm")" = insecure ] || fail "the agent is not marked insecure: $cvm"
ok "agent attested (none, insecure_dev host), manifest delivered, Running after $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s; ports $agent $attest"

if [ $kind = libvirt ]; then
# ---------------------------------------------------------------- fault: the service dies mid-run
# Its domain names the service as its owner. Two more domains wait for the restart: one of ours
# that no CVM owns (an orphan, destroyed), one of another umbra service (left alone)
own_key=$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$state/keys/backends.pub")
owner=$(virsh -c "$host_uri" metadata "umbra-$id" --uri https://umbra.dev/cvm | sed -n 's:.*<owner>\(.*\)</owner>.*:\1:p' \
        | sed 's/&lt;/</g; s/&gt;/>/g; s/&amp;/\&/g')
[ -n "$own_key" ] && [ "$owner" = "$own_key" ] || fail "the domain's owner is '$owner', the service's key '$own_key'"
define_domain () {  # NAME OWNER
    local escaped; escaped=$(sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g' <<<"$2")
    cat >"$work/$1.xml" <<XML
<domain type='qemu'><name>$1</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <metadata><umbra:cvm xmlns:umbra='https://umbra.dev/cvm'><umbra:id>${1#umbra-}</umbra:id>
    <umbra:owner>$escaped</umbra:owner><umbra:created>1</umbra:created></umbra:cvm></metadata>
  <os><type arch='x86_64'>hvm</type></os></domain>
XML
    virsh -c "$host_uri" define "$work/$1.xml" >/dev/null || fail "cannot define $1"
}
define_domain "umbra-orphan-$$" "$own_key"
define_domain "umbra-foreign-$$" 'rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7'
before=$(umbra_domains)
kill -KILL "$backends_pid"
wait "$backends_pid" 2>/dev/null || true
start_backends
waited=0
until [ "$(MESH_SERVICE=backends MESH_TIMEOUT_MS=500 mesh sys.ping '{}' | jq -r .status)" = 200 ]; do
    kill -0 "$backends_pid" 2>/dev/null || fail "umbra-backends did not start again"
    [ $waited -lt 30 ] || fail "umbra-backends did not answer within 30 s of its restart"
    waited=$((waited + 1))
done
waited=0
until grep -q "adopted after a restart of the service" "$work/$id.events"; do
    after=$(tail -n 1 "$work/$id.events" | jq -r .seq)
    page=$(call backends.events.pull "{\"workspace\": \"lab\", \"cvm\": \"$id\", \"after\": $after, \"wait_ms\": 2000}" 200)
    jq -c '.events[]' <<<"$page" >>"$work/$id.events"
    [ $waited -lt 30 ] || fail "the CVM was not adopted: $(tail -n 3 "$work/$id.events")"
    waited=$((waited + 1))
done
cvm=$(call backends.cvms.get "{\"workspace\": \"lab\", \"cvm\": \"$id\"}" 200)
[ "$(jq -r .state <<<"$cvm")" = Running ] || fail "after the restart the CVM is $(jq -r '.state + ": " + (.reason // "")' <<<"$cvm")"
expected=$(tr ' ' '\n' <<<"$before" | grep -v "^umbra-orphan-$$\$" | grep . | tr '\n' ' ')
waited=0
until [ "$(umbra_domains)" = "$expected" ]; do
    [ $waited -lt 100 ] || fail "domains before the restart: $before; after: $(umbra_domains); expected $expected"
    sleep 0.1; waited=$((waited + 1))
done
virsh -c "$host_uri" undefine "umbra-foreign-$$" >/dev/null || fail "the foreign domain is gone"
ok "after the restart our orphan domain is destroyed, another service's domain is left alone"
before=$(umbra_domains)
# the participant ports are published again by the new process
waited=0
while [ "$(jq -r .agent_endpoint <<<"$cvm")" = null ]; do
    [ $waited -lt 100 ] || fail "no participant ports after the restart"
    sleep 0.1; waited=$((waited + 1))
    cvm=$(call backends.cvms.get "{\"workspace\": \"lab\", \"cvm\": \"$id\"}" 200)
done
agent=$(jq -r .agent_endpoint <<<"$cvm")
attest=$(jq -r .attest_endpoint <<<"$cvm")
ok "umbra-backends killed (SIGKILL) and restarted: the CVM is adopted, still Running, the same domains ($before); ports $agent $attest"
fi

# ---------------------------------------------------------------- the participants
participant () { "$umbra" "$@" --agent "$agent" --attest-endpoint "$attest" --insecure-dev; }
participant algo "$work/linreg.py" --key "$work/keys/algo.key" >"$work/algo.out" 2>&1 \
    || { cat "$work/algo.out" >&2; fail "umbra algo through the CVM's ports"; }
ok "umbra algo through the bridge"
participant data "$work/data1.csv" --key "$work/keys/data1.key" >"$work/data1.out" 2>&1 \
    || { cat "$work/data1.out" >&2; fail "umbra data data1"; }
participant data "$work/data2.csv" --key "$work/keys/data2.key" >"$work/data2.out" 2>&1 \
    || { cat "$work/data2.out" >&2; fail "umbra data data2"; }
ok "umbra data (two datasets) through the bridge"
waited=0
until participant result --key "$work/keys/consumer.key" -o "$work/result" >"$work/result.out" 2>&1; do
    [ $waited -lt 120 ] || { cat "$work/result.out" >&2; fail "umbra result"; }
    sleep 0.5; waited=$((waited + 1))
done
[ -n "$(ls -A "$work/result")" ] || fail "the result is empty"
ok "umbra result: $(ls "$work/result" | tr '\n' ' ')"

# The agent's events, in order, up to Complete
waited=0
until grep -q '"source":"agent".*Complete' "$work/$id.events"; do
    after=$(tail -n 1 "$work/$id.events" | jq -r .seq)
    page=$(call backends.events.pull "{\"workspace\": \"lab\", \"cvm\": \"$id\", \"after\": $after, \"wait_ms\": 2000}" 200)
    jq -c '.events[]' <<<"$page" >>"$work/$id.events"
    [ $waited -lt 30 ] || fail "no Complete event from the agent: $(tail -n 5 "$work/$id.events")"
    waited=$((waited + 1))
done
jq -s -e '[.[].seq] == [range(1; length + 1)]' "$work/$id.events" >/dev/null || fail "events out of order"
jq -s -e '[.[] | select(.source == "agent") | .agent_seq] as $s | $s == ($s | sort)' "$work/$id.events" \
    >/dev/null || fail "agent events out of order"
ok "$(grep -c '"source":"agent"' "$work/$id.events") agent events in order through backends.events.pull, up to Complete"

# ---------------------------------------------------------------- destroy
if [ $kind = process ]; then
    agent_pid=$(pgrep -f "umbra-agent.*/$id/agent" | head -n 1 || true)
    [ -n "$agent_pid" ] || fail "no agent child for $id"
fi
cvm=$(MESH_TIMEOUT_MS=60000 call backends.cvms.destroy "{\"workspace\": \"lab\", \"cvm\": \"$id\"}" 200)
[ "$(jq -r .state <<<"$cvm")" = Destroyed ] || fail "destroy: $cvm"
if [ $kind = process ]; then
    kill -0 "$agent_pid" 2>/dev/null && fail "the agent child $agent_pid survived the destroy"
    ok "destroyed: the agent child $agent_pid is gone"
else
    virsh -c "$host_uri" domstate "umbra-$id" >/dev/null 2>&1 && fail "the domain umbra-$id is still defined"
    ok "destroyed: the domain umbra-$id is gone from libvirt"
fi

if [ $kind = libvirt ]; then
# ---------------------------------------------------------------- fault: virsh destroy
cvm=$(MESH_TIMEOUT_MS=60000 call backends.cvms.create "{\"workspace\": \"lab\", \"tee\": \"none\", \"vcpus\": 1, \"memory_mb\": $cvm_memory}" 201)
id2=$(jq -r .id <<<"$cvm")
wait_cvm "$id2" AgentReady
virsh -c "$host_uri" destroy "umbra-$id2" >/dev/null || fail "virsh destroy umbra-$id2"
wait_cvm "$id2" Failed
grep -q "the VM was destroyed behind the service's back" "$work/$id2.events" \
    || fail "no Failed event with the reason: $(tail -n 2 "$work/$id2.events")"
waited=0
while virsh -c "$host_uri" domstate "umbra-$id2" >/dev/null 2>&1; do
    [ $waited -lt 100 ] || fail "the failed domain umbra-$id2 was not undefined"
    sleep 0.1; waited=$((waited + 1))
done
ok "virsh destroy behind the service's back: Failed event; the domain is undefined, nothing leaks"

# ---------------------------------------------------------------- fault: a host becomes unreachable
# A second registration of this libvirt, through a unix-socket proxy (as a remote host would be
# reached); stopping the proxy makes it unreachable.
cat >"$work/proxy.py" <<'PROXY'
import socket, sys, threading
listen_path, target = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX)
server.bind(listen_path)
server.listen(8)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    client, _ = server.accept()
    upstream = socket.socket(socket.AF_UNIX)
    upstream.connect(target)
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
PROXY
$python "$work/proxy.py" "$work/remote.sock" /run/libvirt/libvirt-sock &
proxy_pid=$!
pids+=($proxy_pid)
waited=0
until [ -S "$work/remote.sock" ]; do
    [ $waited -lt 50 ] || fail "the libvirt socket proxy did not start"
    sleep 0.1; waited=$((waited + 1))
done
remote_uri="qemu+unix:///system?socket=$work/remote.sock"
reply=$(MESH_TIMEOUT_MS=60000 call backends.hosts.register "{\"workspace\": \"lab\", \"name\": \"remote\", \"uri\": \"$remote_uri\", \"insecure_dev\": true}" 201)
[ "$(jq -r .status <<<"$reply")" = up ] || fail "the proxied host is not up: $reply"
kill -KILL "$proxy_pid"
wait "$proxy_pid" 2>/dev/null || true
rm -f "$work/remote.sock"
waited=0
until [ "$(call backends.hosts.get '{"workspace": "lab", "host": "remote"}' 200 | jq -r .status)" = unreachable ]; do
    [ $waited -lt 300 ] || fail "the host behind the stopped proxy is still up"
    sleep 0.1; waited=$((waited + 1))
done
reply=$(call backends.hosts.get '{"workspace": "lab", "host": "remote"}' 200)
[ -n "$(jq -r '.error // empty' <<<"$reply")" ] || fail "the unreachable host has no reason: $reply"
ok "the proxied host is unreachable: $(jq -r .error <<<"$reply" | cut -c1-100)"
refused backends.cvms.create '{"workspace": "lab", "tee": "none", "vcpus": 1, "memory_mb": 256, "host": "remote"}' 409 unreachable
cvm=$(MESH_TIMEOUT_MS=60000 call backends.cvms.create "{\"workspace\": \"lab\", \"tee\": \"none\", \"vcpus\": 1, \"memory_mb\": $cvm_memory}" 201)
id3=$(jq -r .id <<<"$cvm")
[ "$(jq -r .host <<<"$cvm")" = dev ] || fail "the scheduler placed the CVM on $(jq -r .host <<<"$cvm")"
wait_cvm "$id3" AgentReady
cvm=$(MESH_TIMEOUT_MS=60000 call backends.cvms.destroy "{\"workspace\": \"lab\", \"cvm\": \"$id3\"}" 200)
ok "the scheduler placed a CVM on the reachable host dev; it came up and was destroyed"
[ "$(umbra_domains)" = "$initial_domains" ] || fail "domains left behind: $(umbra_domains) (at the start: $initial_domains)"
ok "no umbra domain of this run is left on $host_uri"
else
# ---------------------------------------------------------------- fault: the agent dies
cvm=$(call backends.cvms.create '{"workspace": "lab", "tee": "none", "vcpus": 1, "memory_mb": 256}' 201)
id2=$(jq -r .id <<<"$cvm")
wait_cvm "$id2" AgentReady
agent_pid=$(pgrep -f "umbra-agent.*/$id2/agent" | head -n 1 || true)
[ -n "$agent_pid" ] || fail "no agent child for $id2"
kill -KILL "$agent_pid"
wait_cvm "$id2" Failed
grep -q "the agent process died (signal 9)" "$work/$id2.events" \
    || fail "no Failed event with the reason: $(tail -n 2 "$work/$id2.events")"
ok "agent killed: Failed event '$(grep -o 'the agent process died (signal 9)' "$work/$id2.events" | head -n 1)'"

# ---------------------------------------------------------------- fault: the agent stops answering
cvm=$(call backends.cvms.create '{"workspace": "lab", "tee": "none", "vcpus": 1, "memory_mb": 256}' 201)
id3=$(jq -r .id <<<"$cvm")
wait_cvm "$id3" AgentReady
agent_pid=$(pgrep -f "umbra-agent.*/$id3/agent" | head -n 1 || true)
[ -n "$agent_pid" ] || fail "no agent child for $id3"
kill -STOP "$agent_pid"
wait_cvm "$id3" Failed
grep -q "the agent stopped answering" "$work/$id3.events" \
    || fail "no Failed event 'the agent stopped answering': $(tail -n 2 "$work/$id3.events")"
waited=0
while kill -0 "$agent_pid" 2>/dev/null; do
    [ $waited -lt 100 ] || fail "the stopped agent $agent_pid was not killed"
    sleep 0.1; waited=$((waited + 1))
done
ok "agent stopped (SIGSTOP): Failed 'the agent stopped answering' after $UMBRA_BACKENDS_AGENT_TIMEOUT_S s; the child is gone"

fi

kill -0 "$backends_pid" || fail "umbra-backends died"
echo "backends_process: $checks checks passed"
