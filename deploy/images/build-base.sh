#!/usr/bin/env bash
# The Debian base image, made here from Debian's packages (no registry needed):
# debootstrap's minbase variant of bookworm, trimmed as Docker's debian:bookworm-slim is
# (no docs, man pages or locales; no apt lists), loaded with `docker import` as
# ${NAMESPACE}/debian:bookworm-slim. Skipped when that tag exists with this recipe's hash.
#
#   deploy/images/build-base.sh stackling-local
set -euo pipefail

NAMESPACE="${1:?usage: build-base.sh NAMESPACE}"
SUITE=bookworm
MIRROR="${STACKLING_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY="${STACKLING_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
TAG="$NAMESPACE/debian:$SUITE-slim"
RECIPE="$(cat "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)-$MIRROR"

say() { printf '[base] %s\n' "$*"; }

if [[ "$(docker image inspect --format '{{index .Config.Labels "org.stackling.recipe"}}' \
  "$TAG" 2>/dev/null)" == "$RECIPE" ]]; then
  say "$TAG: up to date"
  exit 0
fi

ROOTFS="$(mktemp -d /tmp/stackling-rootfs.XXXXXX)"
cleanup() {
  # debootstrap may leave /proc or /sys mounted in the target after a failure.
  for m in proc sys dev/pts dev; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$ROOTFS"
}
trap cleanup EXIT

say "debootstrap $SUITE (minbase) from $MIRROR"
log=/tmp/stackling-debootstrap.log
if ! debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" \
  >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "[base] ERROR: debootstrap failed (log: $log)" >&2
  exit 1
fi

# Sources as the official image has them, and its slimming rules for later installs.
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
SOURCES
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
DPKG
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-slim" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT
find "$ROOTFS/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$ROOTFS"/usr/share/{man,info,locale,lintian}/* "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/* \
  "$ROOTFS"/tmp/* "$ROOTFS"/root/.bash_history
: >"$ROOTFS/etc/machine-id"
for m in proc sys dev/pts dev; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done

say "docker import -> $TAG"
tar --numeric-owner --xattrs -C "$ROOTFS" -c . |
  docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.stackling.recipe=$RECIPE" \
    - "$TAG" >/dev/null
say "$TAG: $(docker image inspect --format '{{.Size}}' "$TAG" | numfmt --to=iec) "
