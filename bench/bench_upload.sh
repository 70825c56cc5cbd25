#!/usr/bin/env bash
# bench/bench_upload.sh - a dataset upload to a standalone umbra-agent, against `openssl dgst
# -sha3-256` over the same file, in the same run.
#
#     bench/bench_upload.sh [--size MIB] [--rounds N] [--build DIR]
#
# Makes a random file of --size MiB (default 1024, i.e. 1 GiB) with head -c from /dev/urandom
# under /tmp, keys and a manifest naming it; then, --rounds times (default 3), starts a fresh
# umbra-agent --attestation none on free ports, uploads a tiny algorithm with `umbra algo`, and:
#   - times `openssl dgst -sha3-256 FILE` (the peer: one pass of the same hash over the same
#     cached bytes);
#   - runs bench_upload (bench/bench_upload.c, umb_agent_client): it connects (attestation,
#     CURVE), hashes the file on the client, then streams it: the agent decrypts, hashes and
#     writes every chunk while the client keeps at most `credit` chunks in flight.
# Prints the streaming throughput, openssl's, their ratio (target >= 0.7), the end-to-end figure
# that includes the client's own hashing pass (what `umbra data` costs), and the agent's peak RSS
# (VmHWM from /proc/PID/status, target < 64 MiB): medians of the rounds (each ratio within its
# round, so load from elsewhere on the machine moves both sides alike), the highest RSS.
# Deletes everything it made.
# TMPDIR (default /tmp) holds the file and the agent's work directory. The build directory: --build,
# else BENCH_BUILD_DIR, else build-bench. AGENT_ARGS adds options to
# umbra-agent (e.g. "--credit 16 --chunk-size 1048576"; the defaults are the agent's).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
size=1024
rounds=3
build=${BENCH_BUILD_DIR:-$root/build-bench}
while [ $# -gt 0 ]; do
    case $1 in
        --size) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [--size MIB] [--rounds N] [--build DIR]" >&2; exit 2; }
                size=$2; shift 2 ;;
        --build) build=${2:?}; shift 2 ;;
        --rounds) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [--size MIB] [--rounds N] [--build DIR]" >&2; exit 2; }
                rounds=$2; shift 2 ;;
        *) echo "usage: $0 [--size MIB] [--rounds N] [--build DIR]" >&2; exit 2 ;;
    esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
umbra=$build/cli/umbra
agent_bin=$build/guest/agent/umbra-agent
bench=$build/bench/bench_upload
for tool in "$umbra" "$agent_bin" "$bench"; do
    [ -x "$tool" ] || { echo "bench_upload: $tool is not built" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/umbra-bench-upload.XXXXXX")
agent_pid=
cleanup () {
    if [ -n "$agent_pid" ]; then
        kill -TERM "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail () { echo "bench_upload: $*" >&2; exit 1; }
now () { date +%s.%N; }

echo "== upload: ${size} MiB dataset to a standalone agent vs openssl dgst -sha3-256"
head -c "$((size * 1024 * 1024))" /dev/urandom >"$work/data.bin"
printf 'import os\nprint(sorted(os.listdir(os.environ["UMBRA_DATASETS"])))\n' >"$work/algo.py"
for party in algo data consumer; do
    "$umbra" keys generate --type ed25519 --out "$work/$party" >/dev/null || fail "keys generate"
done
data_hash=$("$umbra" checksum "$work/data.bin")          #  also brings the file into the page cache
algo_hash=$("$umbra" checksum "$work/algo.py")
jq -n --arg ah "$algo_hash" --rawfile ak "$work/algo.pub" --arg dh "$data_hash" --rawfile dk "$work/data.pub" \
      --rawfile ck "$work/consumer.pub" \
    '{id: "bench-upload", algorithm: {hash: $ah, userKey: $ak, type: "python"},
      datasets: [{hash: $dh, userKey: $dk, filename: "data.bin"}],
      result_consumers: [{userKey: $ck}]}' >"$work/manifest.json"

free_ports () {
    /usr/bin/python3 - <<'EOF'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        a.close(); b.close(); continue
    a.close(); b.close(); print(p); break
EOF
}

openssl dgst -sha3-256 "$work/data.bin" >/dev/null                  #  warm-up, not reported
: >"$work/rounds"
for round in $(seq 1 "$rounds"); do
    # A fresh agent (an asset is received once), its tiny algorithm first
    port=$(free_ports)
    rm -rf "$work/agent"
    # shellcheck disable=SC2086  # AGENT_ARGS holds several options, e.g. "--credit 16"
    "$agent_bin" --manifest "$work/manifest.json" --listen "tcp://127.0.0.1:$port" --attestation none \
        --workdir "$work/agent" ${AGENT_ARGS:-} >"$work/agent.out" 2>"$work/agent.err" &
    agent_pid=$!
    waited=0
    until grep -q "listening on" "$work/agent.out" 2>/dev/null; do
        kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.err" >&2; fail "umbra-agent exited"; }
        [ $waited -lt 200 ] || fail "umbra-agent did not start"
        sleep 0.1; waited=$((waited + 1))
    done
    endpoint=tcp://127.0.0.1:$port
    "$umbra" algo "$work/algo.py" --key "$work/algo.key" --agent "$endpoint" --insecure-dev >/dev/null 2>"$work/err" \
        || { cat "$work/err" >&2; fail "umbra algo"; }
    rss_idle=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$agent_pid/status")

    # The peer: one SHA3-256 pass by openssl over the same (cached) file, right before
    t0=$(now)
    openssl_hash=$(openssl dgst -sha3-256 -r "$work/data.bin" | cut -d' ' -f1)
    t1=$(now)
    [ "$openssl_hash" = "$data_hash" ] || fail "openssl and umbra checksum disagree"
    openssl_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')

    cpu0=$(awk '{ print $14 + $15 }' "/proc/$agent_pid/stat")
    "$bench" --agent "$endpoint" --key "$work/data.key" --file "$work/data.bin" --insecure-dev >"$work/bench.out" \
        || fail "bench_upload failed"
    cpu1=$(awk '{ print $14 + $15 }' "/proc/$agent_pid/stat")
    rss_peak=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$agent_pid/status")
    value () { awk -v key="$1" '$1 == key && $2 == "=" { print $3 }' "$work/bench.out"; }
    stream_s=$(value upload.stream_s)
    total_s=$(value upload.total_s)
    end_s=$(value upload.end_s)
    [ -n "$stream_s" ] || fail "bench_upload printed no figures"
    agent_cpu_s=$(awk -v t="$((cpu1 - cpu0))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }')
    kill -TERM "$agent_pid"
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=
    echo "$openssl_s $stream_s $total_s $rss_peak $rss_idle $agent_cpu_s $end_s" >>"$work/rounds"
    awk -v size="$size" -v r="$round" -v o="$openssl_s" -v s="$stream_s" -v t="$total_s" -v c="$agent_cpu_s" \
        -v e="$end_s" 'BEGIN {
        printf "round %d: openssl %.1f MiB/s, streaming %.1f MiB/s (ratio %.3f; upload.end %.3f s), end to end %.1f MiB/s, agent CPU %.2f s\n",
               r, size / o, size / s, o / s, e, size / t, c }'
done

# Medians of the rounds (each ratio from its own round), the highest peak RSS
median () { sort -g | awk '{ v [NR] = $1 } END { print (NR % 2) ? v [(NR + 1) / 2] : (v [NR / 2] + v [NR / 2 + 1]) / 2 }'; }
openssl_s=$(awk '{ print $1 }' "$work/rounds" | median)
stream_s=$(awk '{ print $2 }' "$work/rounds" | median)
total_s=$(awk '{ print $3 }' "$work/rounds" | median)
ratio=$(awk '{ print $1 / $2 }' "$work/rounds" | median)
e2e_ratio=$(awk '{ print $1 / $3 }' "$work/rounds" | median)
rss_peak=$(awk '{ print $4 }' "$work/rounds" | sort -g | tail -n 1)
rss_idle=$(awk '{ print $5 }' "$work/rounds" | sort -g | tail -n 1)
agent_cpu_s=$(awk '{ print $6 }' "$work/rounds" | median)
end_s=$(awk '{ print $7 }' "$work/rounds" | median)
chunks_ratio=$(awk '{ print $1 / ($2 - $7) }' "$work/rounds" | median)

awk -v size="$size" -v o="$openssl_s" -v s="$stream_s" -v t="$total_s" -v ratio="$ratio" -v e2e="$e2e_ratio" \
    -v rss="$rss_peak" -v idle="$rss_idle" -v cpu="$agent_cpu_s" -v rounds="$rounds" -v cores="$(nproc)" \
    -v load="$(cut -d' ' -f1-3 /proc/loadavg)" -v e="$end_s" -v cr="$chunks_ratio" 'BEGIN {
    printf "\n== upload summary (%d MiB, medians of %d rounds, %d cores, load %s)\n", size, rounds, cores, load
    printf "  openssl dgst -sha3-256          %10.1f MiB/s  (%.3f s)\n", size / o, o
    printf "  upload, streaming (hash known)  %10.1f MiB/s  (%.3f s; agent CPU %.2f s)\n", size / s, s, cpu
    printf "  streaming / openssl             %10.3f        (target >= 0.7)\n", ratio
    printf "    of which agent.upload.end     %10.3f s      (the agent checks the hash and fsyncs the file)\n", e
    printf "    chunks only / openssl         %10.3f        (begin to the last chunk answered)\n", cr
    printf "  umbra data end to end           %10.1f MiB/s  (%.3f s: client hash pass + streaming)\n", size / t, t
    printf "  end to end / openssl            %10.3f\n", e2e
    printf "  agent peak RSS (VmHWM)          %10.1f MiB    (target < 64 MiB; %.1f MiB before the upload)\n", rss / 1024, idle / 1024
    printf "upload.openssl_mib_s = %.1f\nupload.stream_mib_s = %.1f\nupload.ratio = %.3f\nupload.e2e_ratio = %.3f\nupload.agent_vmhwm_mib = %.1f\n",
           size / o, size / s, ratio, e2e, rss / 1024
}'
