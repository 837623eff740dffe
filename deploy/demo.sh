#!/usr/bin/env bash
# The demo, with the unmodified openstack CLI and the clouds.yaml `make run` wrote: a
# network with a subnet, the stackling-tiny images, a flavor, one server; then its console
# with the DHCP lease it got. Run it once `make run` has printed "ready".
#
#   deploy/demo.sh            # STACKLING_DATA_DIR (default ./data) holds clouds.yaml
#   deploy/demo.sh --cleanup  # delete what it made
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${STACKLING_DATA_DIR:-$ROOT/data}"
GUEST_DIR="${STACKLING_GUEST_DIR:-/var/lib/stackling/guest}"
OPENSTACK="${OPENSTACK:-$ROOT/.venv/bin/openstack}"
export OS_CLIENT_CONFIG_FILE="$DATA_DIR/clouds.yaml"
demo() { "$OPENSTACK" --os-cloud stackling-demo "$@"; }
admin() { "$OPENSTACK" --os-cloud stackling-admin "$@"; }
say() { printf '\n== %s\n' "$*"; }

if [[ "${1:-}" == "--cleanup" ]]; then
  demo server delete --wait demo-server 2>/dev/null || true
  demo subnet delete demo-subnet 2>/dev/null || true
  demo network delete demo-net 2>/dev/null || true
  for image in stackling-tiny stackling-tiny-kernel stackling-tiny-ramdisk; do
    demo image delete "$image" 2>/dev/null || true
  done
  admin flavor delete demo.tiny 2>/dev/null || true
  exit 0
fi

[[ -f "$OS_CLIENT_CONFIG_FILE" ]] || { echo "no $OS_CLIENT_CONFIG_FILE: run make run first" >&2; exit 1; }
[[ -f "$GUEST_DIR/vmlinuz" ]] || { echo "no guest in $GUEST_DIR: run make image" >&2; exit 1; }

say "network demo-net with subnet 10.42.0.0/24"
demo network show demo-net -f value -c id >/dev/null 2>&1 || demo network create demo-net -f value -c id
demo subnet show demo-subnet -f value -c id >/dev/null 2>&1 ||
  demo subnet create demo-subnet --network demo-net --subnet-range 10.42.0.0/24 -f value -c id

say "images: stackling-tiny (kernel + ramdisk, booted directly)"
image_id() { demo image show "$1" -f value -c id 2>/dev/null; }
kernel="$(image_id stackling-tiny-kernel || true)"
[[ -n "$kernel" ]] || kernel="$(demo image create stackling-tiny-kernel --disk-format aki \
  --container-format aki --file "$GUEST_DIR/vmlinuz" -f value -c id)"
ramdisk="$(image_id stackling-tiny-ramdisk || true)"
[[ -n "$ramdisk" ]] || ramdisk="$(demo image create stackling-tiny-ramdisk --disk-format ari \
  --container-format ari --file "$GUEST_DIR/initramfs.gz" -f value -c id)"
image="$(image_id stackling-tiny || true)"
if [[ -z "$image" ]]; then
  printf 'stackling-tiny' >"$DATA_DIR/.demo-ami"
  image="$(demo image create stackling-tiny --disk-format ami --container-format ami \
    --file "$DATA_DIR/.demo-ami" --property kernel_id="$kernel" --property ramdisk_id="$ramdisk" \
    --property os_command_line="console=ttyS0 quiet" -f value -c id)"
fi
echo "$image"

say "flavor demo.tiny (admin)"
admin flavor show demo.tiny -f value -c id >/dev/null 2>&1 ||
  admin flavor create demo.tiny --ram 128 --vcpus 1 --disk 1 -f value -c id

say "server demo-server"
demo server show demo-server -f value -c id >/dev/null 2>&1 ||
  demo server create demo-server --image stackling-tiny --flavor demo.tiny \
    --network demo-net --wait -f value -c id
demo server show demo-server -f value -c status -c addresses

say "console of demo-server (waiting for its DHCP lease)"
for ((t = 0; t < 120; t++)); do
  console="$(demo console log show demo-server 2>/dev/null || true)"
  grep -q "stackling-guest: ip" <<<"$console" && break
  sleep 1
done
grep "stackling-guest:" <<<"$console" || { echo "no DHCP lease on the console yet" >&2; exit 1; }
