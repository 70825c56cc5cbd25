#!/usr/bin/env bash
# bench/bench_backends.sh - the backends service (proto/msgpack/backends.md): how fast it brings
# CVMs up and takes them down, against the same agents or VMs started by hand, in the same run.
#
#     bench/bench_backends.sh [--cvms N] [--rounds N] [--build DIR]
#
# umbra-auth and umbra-backends run as processes on a temporary state directory and free ports
# (as tests/integration/backends_process.sh starts them); a user, a workspace and a token are
# made, and a small mesh client written from proto/msgpack/envelope.md (python3-zmq,
# python3-msgpack; copied into the work directory) talks to backends.
#
# 1. The process driver, --cvms CVMs at once (default 100). A process host offers the machine's
#    CPUs and the scheduler does not overcommit, so ceil(N / cores) hosts `process:///bench-K`
#    (insecure_dev; all this machine) are registered. One DEALER sends every backends.cvms.create
#    (tee none, vcpus 1, memory_mb 128; the scheduler places them) at once, deadline 60 s each,
#    and follows each CVM from its create reply on with backends.events.pull long-polls until it
#    is AgentReady (the agent attested, none accepted on an insecure host, its control connection
#    up). Then all are destroyed at once, and nothing may be left: every CVM Destroyed, the hosts'
#    capacity.cvms 0, no umbra-agent process whose command line holds the service's CVM work
#    directory (counted before, at the peak and after).
#    Figures: create -> all settled (s, CVMs/s), create -> all answered, destroy -> all answered,
#    leaked processes, and the CVMs the service reported Failed, with their reasons: those are
#    counted and the run goes on (a leak, a refused request or a CVM that never settles stops it).
#    The peer: as many bare `umbra-agent --listen ... --attest-listen ... --workdir ...
#    --attestation none --control-key K` (the binary and flags of the process driver,
#    services/backends/umb_driver.c) started at once until each prints "listening on", then
#    SIGTERMed and reaped. service/bare is what the service adds around the agents: auth checks,
#    the store, its one worker thread, the in-process bridges, attestation, the control link.
#    The service keeps its default backends.agent_timeout_s (15 s): every CVM here is up and gone
#    within seconds, far inside it (raise it with UMBRA_BACKENDS_AGENT_TIMEOUT_S if a slower
#    machine makes CVMs fail "the agent stopped answering").
# 2. A real VM under libvirt: scripts/libvirt-up and guest/eos/build-image BUILD_DIR (both
#    idempotent; the image goes to EOS_OUT, default /var/cache/umbra/eos, which the service reads
#    as backends.image_dir). A `qemu:///system` host (insecure_dev) is registered; --rounds times
#    (default 3) a `none` CVM (vcpus 1, memory_mb 512) is created and timed from the request to
#    AgentReady (events.pull long-polls), then destroyed. Target: 5 s under TCG on this machine.
#    It prints whether KVM could be used (the host's caps.kvm) and was (the domain's type).
#    backends.none_accel is tcg here unless UMBRA_BACKENDS_NONE_ACCEL says otherwise: libvirt
#    offers KVM on this machine, but its nested KVM guests never reach init (measured). The
#    peer: the same image booted by bare qemu-system-x86_64 (TCG, the kernel, initramfs and
#    command line the service gives, a virtio-serial port org.umbra.link.0), reached as
#    tests/integration/eos_boot.sh does: a host-side umbra-bridge and `umbra attestation get`
#    until the agent answers (tried every 50 ms once the serial log shows the guest's bridge).
#    The service's domain is q35 with libvirt's default CPU; the bare one is -M pc -cpu max as in
#    guest/eos/README.md. Ratio service/bare, medians of the rounds. Without libvirt or the image
#    this figure is skipped, with the reason.
# Nothing is asserted on time; the exit code is 0 unless something failed to work. Prints
# `KEY = VALUE` figure lines (backends.*) for bench/run. Deletes everything it made: its
# services, their agents and domains, the work directory (the guest image is kept).
# The build directory: --build, else BENCH_BUILD_DIR, else build-bench. TMPDIR (default /tmp)
# holds the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cvms=100
rounds=3
build=${BENCH_BUILD_DIR:-$root/build-bench}
usage () { echo "usage: $0 [--cvms N] [--rounds N] [--build DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --cvms) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; cvms=$2; shift 2 ;;
        --rounds) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; rounds=$2; shift 2 ;;
        --build) build=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
auth_bin=$build/services/auth/umbra-auth
backends_bin=$build/services/backends/umbra-backends
agent_bin=$build/guest/agent/umbra-agent
bridge_bin=$build/guest/bridge/umbra-bridge
python=/usr/bin/python3
eos_out=${EOS_OUT:-/var/cache/umbra/eos}
vm_uri=qemu:///system
for tool in "$umbra" "$auth_bin" "$backends_bin" "$agent_bin" "$bridge_bin"; do
    [ -x "$tool" ] || { echo "bench_backends: $tool is not built" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "bench_backends: jq is needed" >&2; exit 1; }
$python -c 'import zmq, msgpack' 2>/dev/null \
    || { echo "bench_backends: python3-zmq and python3-msgpack are needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/umbra-bench-backends.XXXXXX")
pids=()
qemu_pid=
bridge_pid=
cleanup () {
    for pid in $bridge_pid $qemu_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $bridge_pid $qemu_pid; do wait "$pid" 2>/dev/null || true; done
    # The service destroys nothing when it stops: its domains go here (umbra-cvm_..., listed
    # by the bench client as it made them)
    if [ -s "$work/domains" ]; then
        while read -r domain; do
            virsh -c "$vm_uri" destroy "$domain" >/dev/null 2>&1 || true
            virsh -c "$vm_uri" undefine "$domain" >/dev/null 2>&1 || true
        done <"$work/domains"
    fi
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail () {
    echo "bench_backends: $*" >&2
    for log in "$work"/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
    exit 1
}
now () { date +%s.%N; }
free_port () { $python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- the services
state=$work/state
mkdir -p "$state"
export UMBRA_STATE_DIR=$state
export UMBRA_LOG_LEVEL=warn
UMBRA_AUTH_ENDPOINT=tcp://127.0.0.1:$(free_port)
UMBRA_AUTH_PUB_ENDPOINT=tcp://127.0.0.1:$(free_port)
UMBRA_BACKENDS_ENDPOINT=tcp://127.0.0.1:$(free_port)
UMBRA_BACKENDS_PUB_ENDPOINT=tcp://127.0.0.1:$(free_port)
export UMBRA_AUTH_ENDPOINT UMBRA_AUTH_PUB_ENDPOINT UMBRA_BACKENDS_ENDPOINT UMBRA_BACKENDS_PUB_ENDPOINT
export UMBRA_BACKENDS_AGENT_PATH=$agent_bin
export UMBRA_BACKENDS_CERTIFY_AGENTS=false          # no certs service here
export UMBRA_BACKENDS_IMAGE_DIR=$eos_out
export UMBRA_BACKENDS_NONE_ACCEL=${UMBRA_BACKENDS_NONE_ACCEL:-tcg}
"$auth_bin" >"$work/auth.log" 2>&1 &
pids+=("$!")
"$backends_bin" >"$work/backends.log" 2>&1 &
backends_pid=$!
pids+=("$backends_pid")

# ---------------------------------------------------------------- the mesh client
cat >"$work/mesh.py" <<'EOF'
"""A mesh client from proto/msgpack/envelope.md, for bench/bench_backends.sh.
  mesh.py call OP JSON            one request; prints {"status", "code", "error", "body"}
  mesh.py fleet N                 N process CVMs at once: create, AgentReady, destroy, leaks
  mesh.py bare AGENT N            the peer: N bare agents started, listening, stopped, reaped
  mesh.py vm HOST                 one CVM on HOST: create -> AgentReady, then destroy
Environment: UMBRA_STATE_DIR, UMBRA_<SERVICE>_ENDPOINT, TOKEN_FILE, WORKSPACE, DOMAINS_FILE."""
import json, os, signal, subprocess, sys, time
import msgpack, zmq

def z85_field(path, name):
    for line in open(path):
        key, _, value = line.strip().partition("=")
        if key.strip() == name:
            return value.strip().strip('"').encode()

class Mesh:
    """One DEALER; requests are pipelined and matched by id."""
    def __init__(self, service):
        state = os.environ["UMBRA_STATE_DIR"]
        keys = os.path.join(state, "keys")
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.curve_serverkey = z85_field(os.path.join(keys, service + ".pub"), "public-key")
        self.sock.curve_publickey = z85_field(os.path.join(keys, "gateway.key"), "public-key")
        self.sock.curve_secretkey = z85_field(os.path.join(keys, "gateway.key"), "secret-key")
        self.sock.linger = 0
        self.sock.connect(os.environ["UMBRA_%s_ENDPOINT" % service.upper()])
        path = os.environ.get("TOKEN_FILE")
        self.token = open(path).read().strip() if path and os.path.exists(path) else None
        self.serial, self.stash = 0, {}

    def send(self, op, body, deadline_ms=60000):
        self.serial += 1
        rid = "b-%d-%d" % (os.getpid(), self.serial)
        header = {"v": 1, "id": rid, "op": op, "deadline_ms": deadline_ms}
        if self.token:
            header["token"] = self.token
        self.sock.send_multipart([msgpack.packb(header), msgpack.packb(body)])
        return rid

    def recv(self, timeout_ms):
        """(id, status, header, body), or None after timeout_ms"""
        if not self.sock.poll(timeout_ms):
            return None
        frames = self.sock.recv_multipart()
        header = msgpack.unpackb(frames[0], raw=False)
        return header["id"], header["status"], header, msgpack.unpackb(frames[1], raw=False)

    def call(self, op, body, deadline_ms=60000):
        rid = self.send(op, body, deadline_ms)
        end = time.monotonic() + deadline_ms / 1000 + 1
        while rid not in self.stash:
            left = end - time.monotonic()
            got = self.recv(max(1, int(left * 1000))) if left > 0 else None
            if got is None:
                return 504, {"error": "no reply"}, {}
            self.stash[got[0]] = got[1:]
        return self.stash.pop(rid)

def die(message):
    print("mesh.py: " + message, file=sys.stderr)
    sys.exit(1)

def agents_of(needle):
    """pids of umbra-agent processes whose command line holds needle"""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"umbra-agent") and needle.encode() in b" ".join(argv):
            found.append(int(pid))
    return found

READY = ("AgentReady", "Running")
ENDED = ("Destroyed", "Failed")

def bring_up(mesh, n, body, deadline_s):
    """n backends.cvms.create of body at once (deadline 60 s each); each CVM is followed with
    events.pull long-polls from its create reply on. Returns (ids, refused, time of the last
    create reply, {id: (time it was AgentReady/Running/Destroyed/Failed, state)})"""
    workspace = os.environ["WORKSPACE"]
    pending = {mesh.send("backends.cvms.create", dict(body, workspace=workspace), 60000): None
               for _ in range(n)}
    ids, refused, done, created, creates = [], [], {}, None, n
    end = time.monotonic() + deadline_s
    while pending and time.monotonic() < end:
        got = mesh.recv(1000)
        if got is None or got[0] not in pending:
            continue
        cvm = pending.pop(got[0])
        status, header, reply = got[1:]
        if cvm is None:                 # a create's reply
            creates -= 1
            if not creates:
                created = time.monotonic()
            if status != 201:
                refused.append("%s %s" % (status, header.get("error")))
                continue
            cvm, last = reply["id"], 0
            ids.append(cvm)
        elif status != 200:
            die("events.pull %s: %s %s" % (cvm, status, header.get("error")))
        else:
            last = reply["last"]
        if reply["state"] in READY + ENDED:
            done[cvm] = (time.monotonic(), reply["state"])
        else:
            pending[mesh.send("backends.events.pull", {"workspace": workspace, "cvm": cvm, "after": last,
                                                       "wait_ms": 10000}, 30000)] = cvm
    if creates:
        die("%d of %d creates unanswered" % (creates, n))
    return ids, refused, created, done

def cmd_call(op, body):
    service = os.environ.get("MESH_SERVICE") or op.split(".")[0]
    status, header, reply = Mesh(service).call(op, json.loads(body),
                                               int(os.environ.get("MESH_TIMEOUT_MS", "60000")))
    print(json.dumps({"status": status, "code": header.get("code"), "error": header.get("error"),
                      "body": reply}))

def cmd_fleet(n):
    workspace, mesh = os.environ["WORKSPACE"], Mesh("backends")
    needle = os.path.join(os.environ["UMBRA_STATE_DIR"], "backends", "cvms") + "/"
    before = len(agents_of(needle))
    started = time.monotonic()
    ids, refused, created, done = bring_up(mesh, n, {"tee": "none", "vcpus": 1, "memory_mb": 128,
                                                     "ttl_s": 3600}, 600)
    ready = time.monotonic()
    failed = {cvm: s for cvm, (_, s) in done.items() if s not in READY}
    slow = [cvm for cvm in ids if cvm not in done]
    peak = len(agents_of(needle))
    for cvm in failed:
        status, _, body = mesh.call("backends.cvms.get", {"workspace": workspace, "cvm": cvm})
        print("failed: %s %s: %s" % (cvm, body.get("state"), body.get("reason")))
    times = sorted(t - started for cvm, (t, s) in done.items() if s in READY)
    # Destroy all at once
    t0 = time.monotonic()
    destroys = {mesh.send("backends.cvms.destroy", {"workspace": workspace, "cvm": cvm,
                                                    "reason": "bench"}, 60000): cvm for cvm in ids}
    bad, answered = [], []
    while destroys:
        got = mesh.recv(70000)
        if got is None:
            die("%d destroys unanswered after 70 s" % len(destroys))
        if got[0] in destroys:
            cvm = destroys.pop(got[0])
            answered.append(time.monotonic() - t0)
            if got[1] != 200 and cvm not in failed:
                bad.append("%s: %s %s" % (cvm, got[1], got[2].get("error")))
    destroyed = time.monotonic()
    leaked = agents_of(needle)
    states = {}
    for cvm in ids:
        status, _, body = mesh.call("backends.cvms.get", {"workspace": workspace, "cvm": cvm})
        states[body.get("state")] = states.get(body.get("state"), 0) + 1
    status, _, hosts = mesh.call("backends.hosts.list", {"workspace": workspace})
    live = sum(row["capacity"]["cvms"] for row in hosts["items"] if row["driver"] == "process")
    print("fleet: %d created (%d refused%s) in %.2f s; AgentReady %d, failed %d, not ready in time %d; "
          "agents before %d, at the peak %d, after the destroy %d; states after: %s; capacity.cvms of the hosts %s"
          % (len(ids), len(refused), (": " + refused[0]) if refused else "", created - started,
             len(times), len(failed), len(slow), before, peak, len(leaked), json.dumps(states), live))
    for line in bad[:5]:
        print("destroy refused: " + line, file=sys.stderr)
    if times:
        print("fleet.ready_s = %.3f\nfleet.first_ready_s = %.3f\nfleet.median_ready_s = %.3f\n"
              "fleet.create_replies_s = %.3f" % (ready - started, times[0], times[len(times) // 2],
                                                created - started))
    if answered:
        print("fleet.destroy_first_s = %.3f\nfleet.destroy_median_s = %.3f"
              % (answered[0], answered[len(answered) // 2]))
    print("fleet.destroy_s = %.3f\nfleet.ready = %d\nfleet.failed = %d\nfleet.leaked = %d\n"
          "fleet.not_destroyed = %d\nfleet.capacity_cvms = %s\nfleet.peak_agents = %d"
          % (destroyed - t0, len(times), len(failed), len(leaked),
             len(ids) - states.get("Destroyed", 0), live, peak))
    # A CVM the service reports Failed (with its reason) is a figure; anything left behind, a
    # refused create, a CVM that never settled or a refused destroy is a failure of the bench
    ok = (times and not slow and not refused and not leaked and not bad
          and states.get("Destroyed") == n and live == 0)
    sys.exit(0 if ok else 3)

def cmd_bare(agent, n, work):
    import socket
    socks = []
    for _ in range(2 * n):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    control = zmq.curve_keypair()[0].decode()
    started = time.monotonic()
    children = []
    for i in range(n):
        argv = [agent, "--listen", "tcp://127.0.0.1:%d" % ports[2 * i],
                "--attest-listen", "tcp://127.0.0.1:%d" % ports[2 * i + 1],
                "--workdir", os.path.join(work, "bare-%d" % i), "--attestation", "none",
                "--control-key", control]
        children.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         stdin=subprocess.DEVNULL))
    for child in children:
        line = child.stdout.readline()
        if b"listening on" not in line:
            for other in children:
                other.kill(); other.wait()
            die("a bare agent did not start: %r (exit %s)" % (line, child.poll()))
    listening = time.monotonic()
    t0 = time.monotonic()
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        child.wait()
        child.stdout.close()
    reaped = time.monotonic()
    print("bare.ready_s = %.3f\nbare.reap_s = %.3f" % (listening - started, reaped - t0))

def cmd_vm(host):
    workspace, mesh = os.environ["WORKSPACE"], Mesh("backends")
    started = time.monotonic()
    ids, refused, created, done = bring_up(mesh, 1, {"host": host, "tee": "none", "vcpus": 1,
                                                     "memory_mb": 512, "ttl_s": 600}, 180)
    if refused:
        die("create: " + refused[0])
    status, _, cvm = mesh.call("backends.cvms.get", {"workspace": workspace, "cvm": ids[0]})
    with open(os.environ["DOMAINS_FILE"], "a") as out:
        out.write(cvm["domain"] + "\n")
    if cvm["id"] not in done or done[cvm["id"]][1] not in READY:
        die("CVM %s did not come up: %s %s" % (cvm["id"], cvm.get("state"), cvm.get("reason")))
    ready = done[cvm["id"]][0]
    xml = subprocess.run(["virsh", "-c", "qemu:///system", "dumpxml", cvm["domain"]],
                         capture_output=True, text=True).stdout
    vtype = xml.split("<domain type='", 1)[1].split("'", 1)[0] if "<domain type='" in xml else "?"
    machine = xml.split("machine='", 1)[1].split("'", 1)[0] if "machine='" in xml else "?"
    t0 = time.monotonic()
    status, header, row = mesh.call("backends.cvms.destroy", {"workspace": workspace, "cvm": cvm["id"]},
                                    60000)
    if status != 200 or row.get("state") != "Destroyed":
        die("destroy: %s %s" % (status, header.get("error")))
    print("vm.ready_s = %.3f\nvm.create_reply_s = %.3f\nvm.destroy_s = %.3f\nvm.domain_type = %s\n"
          "vm.machine = %s" % (ready - started, created - started, time.monotonic() - t0, vtype, machine))

if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "call":
        cmd_call(*args)
    elif command == "fleet":
        cmd_fleet(int(args[0]))
    elif command == "bare":
        cmd_bare(args[0], int(args[1]), args[2])
    elif command == "vm":
        cmd_vm(args[0])
    else:
        die("unknown command " + command)
EOF
export TOKEN_FILE=$work/token WORKSPACE=bench DOMAINS_FILE=$work/domains
mesh () { $python "$work/mesh.py" "$@"; }
# call OP JSON STATUS: the reply's body, or fail
call () {
    local reply; reply=$(mesh call "$1" "$2")
    [ "$(jq -r .status <<<"$reply")" = "$3" ] || fail "$1: expected $3, got $(jq -c 'del(.body)' <<<"$reply")"
    jq -c .body <<<"$reply"
}
value () { awk -v key="$2" '$1 == key && $2 == "=" { print $3 }' "$1"; }
median () { sort -g | awk '{ v [NR] = $1 } END { print (NR % 2) ? v [(NR + 1) / 2] : (v [NR / 2] + v [NR / 2 + 1]) / 2 }'; }

waited=0
until [ "$(MESH_SERVICE=auth MESH_TIMEOUT_MS=500 mesh call sys.ping '{}' | jq -r .status)" = 200 ] \
   && [ "$(MESH_SERVICE=backends MESH_TIMEOUT_MS=500 mesh call sys.ping '{}' | jq -r .status)" = 200 ]; do
    kill -0 "$backends_pid" 2>/dev/null || fail "umbra-backends exited at start"
    [ $waited -lt 30 ] || fail "the services did not answer sys.ping within 30 s"
    waited=$((waited + 1))
done
reply=$(mesh call auth.users.register '{"username": "bench", "password": "bench-password-1"}')
[ "$(jq -r .status <<<"$reply")" = 201 ] || fail "auth.users.register: $reply"
mesh call auth.tokens.create '{"username": "bench", "password": "bench-password-1"}' | jq -r .body.access_token >"$work/token"
{ [ -s "$work/token" ] && [ "$(cat "$work/token")" != null ]; } || fail "no access token"
call auth.workspaces.create '{"name": "bench"}' 201 >/dev/null

# ---------------------------------------------------------------- 1. the process driver
echo "== backends: $cvms process CVMs at once (create -> AgentReady -> destroy) vs $cvms bare agents"
# A process host offers the machine's CPUs (caps.cpus) and the scheduler does not overcommit: as
# many hosts (process:///bench-K, the same machine) as it takes to place every CVM's vCPU
per_host=$(call backends.hosts.register '{"workspace": "bench", "name": "proc-1", "uri": "process:///bench-1", "insecure_dev": true}' 201 | jq -r .caps.cpus)
[[ $per_host =~ ^[1-9][0-9]*$ ]] || fail "the process host has no CPUs: $per_host"
proc_hosts=$(( (cvms + per_host - 1) / per_host ))
for k in $(seq 2 "$proc_hosts"); do
    call backends.hosts.register "{\"workspace\": \"bench\", \"name\": \"proc-$k\", \"uri\": \"process:///bench-$k\", \"insecure_dev\": true}" 201 >/dev/null
done
echo "$proc_hosts process hosts of $per_host vCPUs each (the scheduler places the CVMs)"
load_before=$(cut -d' ' -f1 /proc/loadavg)
rc=0
mesh fleet "$cvms" >"$work/fleet.out" 2>"$work/fleet.err" || rc=$?
cat "$work/fleet.out"
[ $rc = 0 ] || { cat "$work/fleet.err" >&2; kill -0 "$backends_pid" 2>/dev/null || echo "umbra-backends died" >&2
                 fail "the process CVMs did not all come up and go cleanly (see above)"; }
mesh bare "$agent_bin" "$cvms" "$work" >"$work/bare.out" 2>"$work/bare.err" \
    || { cat "$work/bare.err" >&2; fail "the bare agents"; }
cat "$work/bare.out"
rm -rf "$work"/bare-*
fleet_ready=$(value "$work/fleet.out" fleet.ready_s)
fleet_destroy=$(value "$work/fleet.out" fleet.destroy_s)
bare_ready=$(value "$work/bare.out" bare.ready_s)
bare_reap=$(value "$work/bare.out" bare.reap_s)
awk -v n="$cvms" -v r="$fleet_ready" -v d="$fleet_destroy" -v br="$bare_ready" -v bd="$bare_reap" \
    -v first="$(value "$work/fleet.out" fleet.first_ready_s)" -v med="$(value "$work/fleet.out" fleet.median_ready_s)" \
    -v replies="$(value "$work/fleet.out" fleet.create_replies_s)" -v leaked="$(value "$work/fleet.out" fleet.leaked)" \
    -v df="$(value "$work/fleet.out" fleet.destroy_first_s)" -v dm="$(value "$work/fleet.out" fleet.destroy_median_s)" \
    -v failed="$(value "$work/fleet.out" fleet.failed)" -v load="$load_before" 'BEGIN {
    printf "\n== process driver summary (%d CVMs at once, load %s before)\n", n, load
    printf "  create -> all AgentReady          %8.2f s   (%.1f CVMs/s; all create replies after %.2f s; first ready %.2f s, median %.2f s)\n", r, (n - failed) / r, replies, first, med
    if (failed > 0)
        printf "  CVMs the service made Failed      %8d     (reasons above; the time is to the last one settled)\n", failed
    printf "  bare agents started -> listening %8.2f s   (peer: %.1f agents/s)\n", br, n / br
    printf "  service / bare, up                %8.1f\n", r / br
    printf "  destroy all -> all answered       %8.2f s   (first answer %.2f s, median %.2f s)\n", d, df, dm
    printf "  bare agents SIGTERM -> reaped     %8.2f s   (peer)\n", bd
    printf "  service / bare, down              %8.1f\n", d / bd
    printf "  leaked agent processes            %8d\n", leaked
    printf "backends.proc_cvms = %d\nbackends.proc_ready_s = %.2f\nbackends.proc_cvms_per_s = %.1f\nbackends.proc_destroy_s = %.2f\n", n, r, (n - failed) / r, d
    printf "backends.proc_failed = %d\n", failed
    printf "backends.proc_leaked = %d\nbackends.bare_ready_s = %.2f\nbackends.bare_reap_s = %.2f\n", leaked, br, bd
    printf "backends.proc_up_ratio = %.1f\nbackends.proc_down_ratio = %.1f\n", r / br, d / bd
}'

# ---------------------------------------------------------------- 2. a real VM
echo
echo "== backends: a none CVM under libvirt ($vm_uri), create -> AgentReady, vs bare qemu"
vm_skip=
if ! "$root/scripts/libvirt-up" 2>"$work/libvirt-up.err"; then
    vm_skip="libvirt does not answer on $vm_uri: $(tr '\n' ' ' <"$work/libvirt-up.err")"
elif ! command -v qemu-system-x86_64 >/dev/null; then
    vm_skip="qemu-system-x86_64 is not installed"
elif ! "$root/guest/eos/build-image" --quiet "$build" "$eos_out" >"$work/image.out" 2>"$work/image.err"; then
    vm_skip="guest/eos/build-image failed: $(tail -n 3 "$work/image.err" | tr '\n' ' ')"
fi
if [ -z "$vm_skip" ]; then
    host=$(MESH_TIMEOUT_MS=120000 mesh call backends.hosts.register \
        "{\"workspace\": \"bench\", \"name\": \"vm\", \"uri\": \"$vm_uri\", \"insecure_dev\": true}")
    [ "$(jq -r .status <<<"$host")" = 201 ] || vm_skip="registering $vm_uri: $(jq -c 'del(.body)' <<<"$host")"
fi
if [ -n "$vm_skip" ]; then
    echo "skip - the VM figure: $vm_skip"
    echo "backends.vm_skipped = 1"
    exit 0
fi
kvm_caps=$(jq -r .body.caps.kvm <<<"$host")
: >"$work/vm.rounds"
for round in $(seq 1 "$rounds"); do
    mesh vm vm >"$work/vm.out" 2>"$work/vm.err" || { cat "$work/vm.err" >&2; fail "round $round of the VM"; }
    echo "$(value "$work/vm.out" vm.ready_s) $(value "$work/vm.out" vm.create_reply_s) $(value "$work/vm.out" vm.destroy_s)" >>"$work/vm.rounds"
    domain_type=$(value "$work/vm.out" vm.domain_type)
    machine=$(value "$work/vm.out" vm.machine)
    echo "round $round: create -> AgentReady $(value "$work/vm.out" vm.ready_s) s (create answered $(value "$work/vm.out" vm.create_reply_s) s: defined, started), destroy $(value "$work/vm.out" vm.destroy_s) s; domain type $domain_type, machine $machine"
done

# The peer: bare QEMU, the service's kernel command line, a host-side bridge, attestation get
read -r control_public < <($python -c 'import zmq; print(zmq.curve_keypair()[0].decode())')
: >"$work/bare-vm.rounds"
for round in $(seq 1 "$rounds"); do
    rm -f "$work/link.sock" "$work/serial.log" "$work/attestation.json"
    started=$(now)
    qemu-system-x86_64 -accel tcg -M pc -cpu max -m 512 -smp 1 -nodefaults -no-user-config -nographic -no-reboot \
        -kernel "$eos_out/vmlinux" -initrd "$eos_out/initramfs.cpio.gz" \
        -append "$(cat "$eos_out/cmdline") umbra.attestation=none umbra.control_key=$control_public" \
        -serial "file:$work/serial.log" -monitor none -nic none \
        -device virtio-serial -chardev "socket,path=$work/link.sock,server=on,wait=off,id=c0" \
        -device virtserialport,chardev=c0,name=org.umbra.link.0 >"$work/qemu.log" 2>&1 &
    qemu_pid=$!
    waited=0
    until [ -S "$work/link.sock" ]; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited: $(cat "$work/qemu.log")"
        [ $waited -lt 200 ] || fail "QEMU made no link socket in 10 s"
        sleep 0.05; waited=$((waited + 1))
    done
    "$bridge_bin" --link "unix-connect:$work/link.sock" --listen control=tcp:127.0.0.1:0 \
        --listen agent=tcp:127.0.0.1:0 --listen attest=tcp:127.0.0.1:0 >"$work/bridge.out" 2>"$work/bridge.log" &
    bridge_pid=$!
    waited=0
    until grep -q "umbra-bridge: ready" "$work/bridge.out" 2>/dev/null \
          && grep -q "umbra-agent: listening on" "$work/serial.log" 2>/dev/null \
          && grep -q "eos: starting umbra-bridge" "$work/serial.log"; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited during boot"
        kill -0 "$bridge_pid" 2>/dev/null || fail "the host umbra-bridge exited"
        [ $waited -lt 2400 ] || fail "the bare guest's agent did not start within 120 s"
        sleep 0.05; waited=$((waited + 1))
    done
    agent_ep=$(sed -n 's/.* agent=\(tcp:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$work/bridge.out" | head -n 1)
    attest_ep=$(sed -n 's/.* attest=\(tcp:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$work/bridge.out" | head -n 1)
    waited=0
    until "$umbra" attestation get --agent "$agent_ep" --attest-endpoint "$attest_ep" --insecure-dev \
            --json --out "$work/attestation.json" --timeout 5 >/dev/null 2>"$work/attest.log"; do
        [ $waited -lt 600 ] || fail "attestation get through the bare guest's bridge"
        sleep 0.05; waited=$((waited + 1))
    done
    ready_s=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
    [ "$(jq -r .platform "$work/attestation.json")" = none ] || fail "the bare guest's attestation: $(cat "$work/attestation.json")"
    kill -TERM "$bridge_pid" "$qemu_pid" 2>/dev/null || true
    wait "$bridge_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true
    bridge_pid=
    qemu_pid=
    echo "$ready_s" >>"$work/bare-vm.rounds"
    echo "bare round $round: qemu start -> attestation through the bridge $ready_s s"
done

vm_rounds=$(awk '{ printf "%s%s", sep, $1; sep = "," }' "$work/vm.rounds")
bare_rounds=$(paste -sd, "$work/bare-vm.rounds")
vm_ready=$(awk '{ print $1 }' "$work/vm.rounds" | median)
vm_reply=$(awk '{ print $2 }' "$work/vm.rounds" | median)
vm_destroy=$(awk '{ print $3 }' "$work/vm.rounds" | median)
bare_vm=$(median <"$work/bare-vm.rounds")
awk -v n="$rounds" -v r="$vm_ready" -v rr="$vm_rounds" -v c="$vm_reply" -v d="$vm_destroy" -v b="$bare_vm" \
    -v br="$bare_rounds" -v kvm="$kvm_caps" -v type="$domain_type" -v machine="$machine" 'BEGIN {
    printf "\n== libvirt summary (none CVM, 1 vCPU, 512 MiB, medians of %d rounds)\n", n
    printf "  create -> AgentReady              %8.2f s   (rounds: %s; target 5 s under TCG)\n", r, rr
    printf "    of which the create reply       %8.2f s   (domain defined and started)\n", c
    printf "  bare qemu -> agent answering      %8.2f s   (peer, rounds: %s)\n", b, br
    printf "  service / bare                    %8.2f\n", r / b
    printf "  destroy                           %8.2f s\n", d
    printf "  KVM: host caps.kvm %s, the domain ran as type %s (%s)\n", kvm, type, type == "kvm" ? "KVM" : "TCG"
    printf "backends.vm_ready_s = %.2f\nbackends.vm_rounds = %s\nbackends.vm_bare_s = %.2f\nbackends.vm_ratio = %.2f\n", r, rr, b, r / b
    printf "backends.vm_destroy_s = %.2f\nbackends.vm_kvm_caps = %s\nbackends.vm_domain_type = %s\nbackends.vm_machine = %s\n", d, kvm, type, machine
}'
