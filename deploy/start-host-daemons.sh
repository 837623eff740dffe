#!/usr/bin/env bash
# Start the host daemons the agents need, without systemd: virtlogd + libvirtd (compute)
# and tgtd (volume). Each is started only when it is not already running. dnsmasq is not
# here: the network agent runs one per network itself.
set -euo pipefail

LOG_DIR="${STACKLING_HOST_LOG_DIR:-/var/log/stackling}"
START=$SECONDS
say() { printf '[daemons %3ds] %s\n' "$((SECONDS - START))" "$*"; }
warn() { printf '[daemons %3ds] WARNING: %s\n' "$((SECONDS - START))" "$*" >&2; }

running() { pgrep -x "$1" >/dev/null 2>&1; }

wait_for() {
  local what="$1" limit="$2" deadline=$((SECONDS + $2))
  shift 2
  until timeout 10 "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      warn "$what not answering after ${limit}s"
      return 1
    fi
    sleep 0.2
  done
}

if [[ $EUID -ne 0 ]]; then
  warn "not root: leaving host daemons alone"
  exit 0
fi
mkdir -p "$LOG_DIR"

start_libvirt() {
  if ! command -v libvirtd >/dev/null || ! command -v virtlogd >/dev/null; then
    warn "libvirtd/virtlogd not installed: skipped"
    return
  fi
  # The package's post-install steps do not all run without systemd; do their part here.
  groupadd -f kvm
  groupadd -f libvirt-qemu
  id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu -G kvm libvirt-qemu
  mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt/images
  # libvirt probes QEMU as root (KVM found) but checks /dev/kvm as libvirt-qemu; when that
  # user cannot open it, every lookup re-probes QEMU (~30 s per domain define).
  if [[ -c /dev/kvm ]]; then chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; fi

  if running virtlogd; then
    say "virtlogd: running"
  else
    virtlogd -d
    say "virtlogd: started"
  fi
  if running libvirtd; then
    say "libvirtd: running"
  else
    libvirtd -d
    say "libvirtd: started"
  fi
  if wait_for "libvirtd (qemu:///system)" 30 virsh -c qemu:///system uri; then
    say "libvirtd: qemu:///system answers"
  fi
}

start_tgtd() {
  if ! command -v tgtd >/dev/null; then
    warn "tgtd not installed: skipped"
    return
  fi
  if running tgtd; then
    say "tgtd: running"
  else
    # -f: no self-daemonising; setsid detaches it from this terminal, output to a log.
    setsid tgtd -f >>"$LOG_DIR/tgtd.log" 2>&1 </dev/null &
    disown
    say "tgtd: started (log $LOG_DIR/tgtd.log)"
  fi
  if wait_for "tgtd" 15 tgtadm --lld iscsi --mode target --op show; then
    say "tgtd: answers"
  fi
}

start_libvirt
start_tgtd
