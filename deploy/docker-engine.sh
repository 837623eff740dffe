#!/usr/bin/env bash
# Make a Docker engine answer on this machine, without systemd: Debian's docker.io (and
# debootstrap, for the locally built base images) installed when missing, dockerd started
# when it does not answer. Idempotent: a second run only checks and returns.
#
# Docker is told to leave the host's firewall alone ("iptables": false, "ip-forward":
# false): the network agent owns the host's iptables, and Docker would otherwise set the
# FORWARD policy to DROP and add chains of its own. Containers on a user-defined network
# still reach each other by name, and published ports go through docker-proxy.
#
# Settings (all optional):
#   STACKLING_SKIP_APT=1     do not install packages
#   STACKLING_DOCKERD_LOG    dockerd's log (default /var/log/stackling/dockerd.log)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
LOG="${STACKLING_DOCKERD_LOG:-/var/log/stackling/dockerd.log}"
DAEMON_JSON=/etc/docker/daemon.json
START=$SECONDS
say() { printf '[docker %3ds] %s\n' "$((SECONDS - START))" "$*"; }
die() {
  printf '[docker] ERROR: %s\n' "$*" >&2
  exit 1
}

# Package : what proves it is there (checked instead of apt-get's exit code).
PACKAGES=("docker.io:/usr/sbin/dockerd" "debootstrap:debootstrap" "docker-compose:docker-compose")

have() {
  if [[ "$1" == /* ]]; then [[ -e "$1" ]]; else command -v "$1" >/dev/null 2>&1; fi
}

install_packages() {
  local entry missing=()
  for entry in "${PACKAGES[@]}"; do
    have "${entry#*:}" || missing+=("${entry%%:*}")
  done
  if ((${#missing[@]} == 0)); then
    say "packages: docker.io, debootstrap, docker-compose present"
    return
  fi
  [[ "${STACKLING_SKIP_APT:-0}" != 1 ]] || die "missing (STACKLING_SKIP_APT=1): ${missing[*]}"
  say "packages: installing ${missing[*]}"
  local log=/tmp/stackling-apt-docker.log
  apt-get update -qq >"$log" 2>&1 || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || true
  for entry in "${PACKAGES[@]}"; do
    have "${entry#*:}" || die "${entry%%:*} still missing after apt-get (see $log)"
  done
}

# The engine's settings: written when absent; an existing file must keep iptables off.
configure() {
  mkdir -p "$(dirname "$DAEMON_JSON")"
  if [[ ! -s "$DAEMON_JSON" ]]; then
    printf '{\n  "iptables": false,\n  "ip-forward": false,\n  "storage-driver": "overlay2"\n}\n' \
      >"$DAEMON_JSON"
    say "wrote $DAEMON_JSON"
  fi
  python3 - "$DAEMON_JSON" <<'PY' || die "$DAEMON_JSON must set \"iptables\": false"
import json, sys
settings = json.load(open(sys.argv[1]))
sys.exit(0 if settings.get("iptables") is False else 1)
PY
}

answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() {
  if answers; then
    say "dockerd: answering ($(docker version --format '{{.Server.Version}}'))"
    return
  fi
  [[ $EUID -eq 0 ]] || die "dockerd is not running and only root can start it"
  mkdir -p "$(dirname "$LOG")"
  # setsid: detached from this shell; every inherited descriptor but 0-2 closed, or the
  # daemon would hold the callers' locks (deploy/setup.sh's fd 9) forever.
  setsid /usr/sbin/dockerd >>"$LOG" 2>&1 </dev/null 9>&- &
  disown
  local deadline=$((SECONDS + 60))
  until answers; do
    ((SECONDS < deadline)) || die "dockerd did not answer within 60 s (log: $LOG)"
    sleep 0.5
  done
  say "dockerd: started ($(docker version --format '{{.Server.Version}}'), log $LOG)"
}

# The network agent's container mounts /run/netns with shared propagation, so that the
# namespaces it makes are the host's: that needs /run/netns to be a shared mount (as
# `ip netns add` leaves it).
shared_netns() {
  mkdir -p /run/netns
  if ! grep -qE ' /run/netns [^ ]+ [^-]*shared:' /proc/self/mountinfo; then
    grep -q ' /run/netns ' /proc/self/mountinfo || mount --bind /run/netns /run/netns
    mount --make-shared /run/netns
    say "/run/netns: made a shared mount"
  fi
}

install_packages
configure
start_dockerd
shared_netns
