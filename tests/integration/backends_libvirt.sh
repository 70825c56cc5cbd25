#!/usr/bin/env bash
# backends_libvirt.sh - the backends service on a real libvirt daemon with a real VM: starts
# libvirtd from Debian's packages when nothing runs it (scripts/libvirt-up: no systemd needed),
# builds the guest image (guest/eos/build-image, idempotent), and runs
# tests/integration/backends_process.sh against qemu:///system: the eos image boots as a `none`
# VM under TCG, the agent is reached through the virtio-serial bridge, the seed computation runs
# and its result is read; then the faults (the service killed and restarted mid-run, `virsh
# destroy` behind its back, a host that becomes unreachable).
#
# It skips (exit 0, saying what is missing) only on a machine that cannot run a VM at all: no
# qemu-system-x86_64 or no libvirtd binary. On the standard machine both are installed by
# scripts/install-deps, and a daemon that does not start is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${TEST_BUILD_DIR:-build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
export EOS_OUT=${EOS_OUT:-/var/cache/umbra/eos}

command -v qemu-system-x86_64 >/dev/null || { echo "skip - backends_libvirt: qemu-system-x86_64 is not installed"; exit 0; }
[ -x /usr/sbin/libvirtd ] || { echo "skip - backends_libvirt: libvirtd is not installed"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "skip - backends_libvirt: qemu:///system needs root here"; exit 0; }

./scripts/libvirt-up || { echo "FAIL: libvirtd does not answer on qemu:///system" >&2; exit 1; }
echo "ok - libvirtd answers on qemu:///system"
guest/eos/build-image --quiet "$build" "$EOS_OUT" >/dev/null \
    || { echo "FAIL: the guest image does not build" >&2; exit 1; }
echo "ok - guest image in $EOS_OUT"
BACKENDS_HOST_URI=qemu:///system BACKENDS_CVM_MEMORY_MB=${BACKENDS_CVM_MEMORY_MB:-512} \
    exec bash tests/integration/backends_process.sh
