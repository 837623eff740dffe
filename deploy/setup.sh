#!/usr/bin/env bash
# Prepare this machine for Stackling: host packages, the venv, identity keys, the broker,
# PostgreSQL and the host daemons. Safe to run again: a second run only checks and returns.
#
# Settings (all optional):
#   STACKLING_DATA_DIR      data directory shared by all processes (default: <repo>/data;
#                           `make setup DATA_DIR=...` sets it, as `make run` does)
#   STACKLING_AMQP_URL      broker URL to check/start (default: amqp://guest:guest@127.0.0.1:5672/)
#   STACKLING_PG_HOST/PORT  PostgreSQL to check/start (default: 127.0.0.1:5432)
#   STACKLING_SKIP_APT=1    do not install host packages
#   STACKLING_SKIP_DAEMONS=1  do not start libvirtd/virtlogd/tgtd
#   STACKLING_SKIP_GUEST=1  do not prepare the guest kernel and initramfs
#   PYTHON                  interpreter for the venv (default: python3.11)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Absolute, and relative to where set-up was started (as the processes will see it).
DATA_DIR="$(realpath -m "${STACKLING_DATA_DIR:-$ROOT/data}")"
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive

VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3.11}"
AMQP_URL="${STACKLING_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
PG_HOST="${STACKLING_PG_HOST:-127.0.0.1}"
PG_PORT="${STACKLING_PG_PORT:-5432}"

# The installable packages of this repo, in dependency order.
PACKAGE_DIRS=(common-rpc compute-svc network-svc volume-svc api-gateway)
# Tools for tests, lint and the all-in-one runner (versions come from constraints.txt).
# playwright drives Debian's chromium in the console's browser tests (it never downloads one).
# schemathesis fuzzes the published APIs through the gateway (make fuzz, tests/fuzz).
DEV_TOOLS=(pytest pytest-asyncio pytest-timeout ruff import-linter openstacksdk python-openstackclient honcho httpx PyYAML playwright schemathesis)

# Host packages, each with what proves it is there: a command, or a path (glob allowed).
# Checked instead of apt-get's exit code: a half-configured unrelated package can make
# apt-get exit 1 although everything asked for got installed.
APT_PACKAGES=(
  "iproute2:ip"
  "iptables:iptables"
  "dnsmasq-base:dnsmasq"
  "qemu-utils:qemu-img"
  "qemu-system-x86:qemu-system-x86_64"
  "qemu-block-extra:/usr/lib/*/qemu/block-iscsi.so"
  "libvirt-daemon:libvirtd"
  "libvirt-daemon-driver-qemu:/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so"
  "libvirt-clients:virsh"
  "libvirt-dev:/usr/include/libvirt/libvirt.h"
  "pkg-config:pkg-config"
  "gcc:gcc"
  "tgt:tgtd"
  "genisoimage:genisoimage"
  "docker-compose:docker-compose"
  "busybox-static:/bin/busybox"
  "cpio:cpio"
  "xz-utils:xz"
  "syslinux:syslinux"
  "mtools:mcopy"
  "dosfstools:mkfs.fat"
  "ipset:ipset"
  # The web console's browser tests (tests/console) and its JavaScript unit tests.
  "chromium:chromium"
  "chromium-driver:chromedriver"
  "nodejs:node"
)
# Nice to have; a failure to install them is only a warning.
APT_OPTIONAL=("bridge-utils:brctl")

START=$SECONDS
say() { printf '[setup %3ds] %s\n' "$((SECONDS - START))" "$*"; }
warn() { printf '[setup %3ds] WARNING: %s\n' "$((SECONDS - START))" "$*" >&2; }
die() {
  printf '[setup] ERROR: %s\n' "$*" >&2
  exit 1
}

have() {
  local probe="$1"
  if [[ "$probe" == /* ]]; then
    compgen -G "$probe" >/dev/null
  else
    command -v "$probe" >/dev/null 2>&1
  fi
}

# shellcheck disable=SC2016  # $1/$2 expand in the inner shell
port_open() { timeout 2 bash -c ': <>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

wait_port() {
  local host="$1" port="$2" what="$3" limit="${4:-90}" t=0
  until port_open "$host" "$port"; do
    ((t++ < limit)) || die "$what did not open $host:$port within ${limit}s"
    sleep 1
  done
}

is_local() { [[ "$1" == 127.* || "$1" == localhost || "$1" == "::1" ]]; }

# --- host packages -------------------------------------------------------------------------
missing_of() {
  local entry out=()
  for entry in "$@"; do
    have "${entry#*:}" || out+=("${entry%%:*}")
  done
  echo "${out[*]}"
}

install_host_packages() {
  local missing optional
  missing="$(missing_of "${APT_PACKAGES[@]}")"
  optional="$(missing_of "${APT_OPTIONAL[@]}")"
  if [[ -z "$missing" ]]; then
    say "host packages: all present${optional:+ (optional missing: $optional)}"
    return
  fi
  if [[ "${STACKLING_SKIP_APT:-0}" == 1 || $EUID -ne 0 ]]; then
    [[ -z "$missing" ]] || warn "host packages missing (not installing): $missing"
    return
  fi
  say "host packages: installing $missing $optional"
  local log="/tmp/stackling-apt.log"
  apt-get update -qq >"$log" 2>&1 || warn "apt-get update failed (see $log)"
  # shellcheck disable=SC2086  # word splitting of the package lists is intended
  if ! apt-get install -y -qq --no-install-recommends $missing $optional >>"$log" 2>&1; then
    warn "apt-get install exited non-zero (see $log); trying package by package"
    local pkg
    for pkg in $missing $optional; do
      apt-get install -y -qq --no-install-recommends "$pkg" >>"$log" 2>&1 || true
    done
  fi
  missing="$(missing_of "${APT_PACKAGES[@]}")"
  optional="$(missing_of "${APT_OPTIONAL[@]}")"
  [[ -z "$optional" ]] || warn "optional packages not installed: $optional"
  [[ -z "$missing" ]] || die "host packages still missing after apt-get: $missing (see $log)"
  say "host packages: installed"
}

# --- Python venv and packages ----------------------------------------------------------------
install_python_packages() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=...)"
    say "venv: creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$VENV uses Python < 3.11; remove it and run again"

  local dirs=() d
  for d in "${PACKAGE_DIRS[@]}"; do
    [[ -f "$d/pyproject.toml" ]] && dirs+=("$d")
  done

  # Reinstall only when what pip would see has changed.
  local stamp="$VENV/.stackling-pip-stamp" digest
  digest="$(
    {
      "$VENV/bin/python" --version
      echo "${dirs[*]} | ${DEV_TOOLS[*]}"
      cat constraints.txt
      for d in "${dirs[@]}"; do cat "$d/pyproject.toml"; done
    } | sha256sum | cut -d' ' -f1
  )"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    say "python packages: up to date (${dirs[*]})"
    return
  fi
  say "python packages: installing ${dirs[*]} + dev tools"
  local editable=()
  for d in "${dirs[@]}"; do editable+=(-e "$d"); done
  local log="/tmp/stackling-pip.log"
  # Build tools first, pinned: the editable installs and the plugin tests build with them.
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -c constraints.txt \
    pip setuptools wheel >"$log" 2>&1 ||
    ! "$VENV/bin/python" -m pip install --disable-pip-version-check \
      -c constraints.txt "${editable[@]}" "${DEV_TOOLS[@]}" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip install failed (full log: $log)"
  fi
  echo "$digest" >"$stamp"
  say "python packages: installed"
}

# --- identity keypair ------------------------------------------------------------------------
# The gateway signs with identity.key, every service verifies with identity.pub: both must
# be there (generate_keypair keeps a private key it finds and rewrites its public half).
generate_keys() {
  local keys="$DATA_DIR/keys"
  if [[ -s "$keys/identity.key" && -s "$keys/identity.pub" ]]; then
    say "identity keys: present in $keys"
    return
  fi
  "$VENV/bin/python" -c \
    'import sys; from common_rpc.chassis.identity import generate_keypair; generate_keypair(sys.argv[1])' \
    "$keys" || die "could not write the identity keys in $keys"
  say "identity keys: generated in $keys"
}

# --- RabbitMQ and PostgreSQL -----------------------------------------------------------------
ensure_rabbitmq() {
  local rest="${AMQP_URL#*://}"
  rest="${rest#*@}"
  rest="${rest%%/*}"
  local host="${rest%%:*}" port="5672"
  [[ "$AMQP_URL" == amqps://* ]] && port="5671"
  [[ "$rest" == *:* ]] && port="${rest##*:}"
  if port_open "$host" "$port"; then
    say "rabbitmq: answering on $host:$port"
    return
  fi
  is_local "$host" || die "rabbitmq at $host:$port does not answer (not local, not starting it)"
  command -v rabbitmq-server >/dev/null || die "rabbitmq-server is not installed"
  say "rabbitmq: starting"
  rabbitmq-server -detached >/dev/null 2>&1 9>&- || true
  wait_port "$host" "$port" rabbitmq 120
  rabbitmqctl await_startup --timeout 60 >/dev/null 2>&1 || true
  say "rabbitmq: up on $host:$port"
}

ensure_postgres() {
  if port_open "$PG_HOST" "$PG_PORT"; then
    say "postgres: answering on $PG_HOST:$PG_PORT"
  else
    is_local "$PG_HOST" || die "postgres at $PG_HOST:$PG_PORT does not answer (not local)"
    command -v pg_ctlcluster >/dev/null || die "pg_ctlcluster is not installed"
    local version
    version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)"
    say "postgres: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 9>&- ||
      warn "pg_ctlcluster exited non-zero; waiting for the port anyway"
    wait_port "$PG_HOST" "$PG_PORT" postgres 60
    say "postgres: up on $PG_HOST:$PG_PORT"
  fi
  # One database (and role) per service, the same script docker-compose's postgres runs.
  if is_local "$PG_HOST" && command -v psql >/dev/null; then
    PGHOST="$PG_HOST" PGPORT="$PG_PORT" POSTGRES_USER="${PGUSER:-postgres}" \
      bash deploy/postgres-init/10-stackling-databases.sh >/dev/null ||
      warn "could not create the per-service databases"
  fi
}

main() {
  # Two set-ups at once (make lint and make test in parallel) would race in pip.
  # Daemons started below get fd 9 closed, or they would hold the lock forever.
  exec 9>"/tmp/stackling-setup-$(echo "$ROOT" | sha1sum | cut -c1-12).lock"
  flock 9
  say "repo $ROOT, data dir $DATA_DIR"
  install_host_packages
  install_python_packages
  mkdir -p "$DATA_DIR" || die "cannot create the data directory $DATA_DIR"
  generate_keys
  ensure_rabbitmq
  ensure_postgres
  if [[ "${STACKLING_SKIP_DAEMONS:-0}" != 1 ]]; then
    bash deploy/start-host-daemons.sh 9>&-
  fi
  if [[ "${STACKLING_SKIP_GUEST:-0}" != 1 ]]; then
    bash deploy/guest-image.sh || warn "guest kernel/initramfs not prepared (VM boots will fail)"
  fi
  say "done"
}

main "$@"
