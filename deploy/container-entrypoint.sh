#!/bin/sh
# Entrypoint of the Stackling images: runs the command (a console script) as given. For an
# agent (root, with CAP_SYS_ADMIN, on the host's network) it first makes /proc/sys and
# /sys writable, as a privileged container has them: the network agent sets forwarding
# and other sysctls in the routers' namespaces. An API process (uid 10001) skips this.
set -e
if [ "$(id -u)" = 0 ]; then
  for path in /proc/sys /sys; do
    if grep -qE "^[^ ]+ $path [^ ]+ ro[, ]" /proc/mounts; then
      mount -o remount,rw "$path" 2>/dev/null || echo "stackling-entrypoint: $path stays read-only" >&2
    fi
  done
fi
exec "$@"
