#!/usr/bin/env bash
# Prepare a tiny test guest for direct kernel boot: Debian's cloud kernel (taken from its
# .deb, not installed: its post-install steps fail without systemd and leave apt broken)
# and a busybox initramfs ("stackling-tiny") that loads virtio, mounts the config drive
# (ISO 9660 labelled config-2 on a virtio disk, OpenStack layout), asks for an address by
# DHCP, reports on the console, serves HTTP on port 80 and then runs the drive's user_data
# as a shell script, its output on the serial console.
#
# Output (STACKLING_GUEST_DIR, default /var/lib/stackling/guest as root, else ./data/guest):
#   vmlinuz  initramfs.gz  kernel-version
#   disk.qcow2   the same guest as a bootable disk (FAT + SYSLINUX, needs syslinux, mtools
#                and dosfstools; skipped with a warning without them): the disk-boot path
# Console lines the guest prints, for tests to wait on:
#   stackling-guest: boot <kernel>  |  config-drive <vdX>  |  ip <addr/len> | no-dhcp  |
#   disk <vdX>  |  ready  |  user-data start  |  (its output)  |  user-data exit <code>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $EUID -eq 0 ]]; then
  OUT="${STACKLING_GUEST_DIR:-/var/lib/stackling/guest}"
else
  OUT="${STACKLING_GUEST_DIR:-${STACKLING_DATA_DIR:-$ROOT/data}/guest}"
fi
KERNEL_META="${STACKLING_GUEST_KERNEL_PACKAGE:-linux-image-cloud-amd64}"
# Load order matters (see docs: host capabilities, guest modules); missing ones are built in.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  failover net_failover virtio_net virtio_blk af_packet cdrom isofs)

START=$SECONDS
say() { printf '[guest %3ds] %s\n' "$((SECONDS - START))" "$*"; }

for tool in busybox cpio gzip dpkg-deb apt-get; do
  command -v "$tool" >/dev/null || {
    echo "[guest] $tool is missing" >&2
    exit 1
  }
done
[[ -x /bin/busybox ]] || {
  echo "[guest] /bin/busybox (busybox-static) is missing" >&2
  exit 1
}

mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fetch_kernel() {
  local pkg
  pkg="$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"
  if [[ -z "$pkg" ]]; then
    apt-get update -qq >/dev/null
    pkg="$(apt-cache depends "$KERNEL_META" | awk '/Depends: linux-image-/ {print $2; exit}')"
  fi
  [[ -n "$pkg" ]] || {
    echo "[guest] cannot resolve $KERNEL_META" >&2
    return 1
  }
  say "kernel: downloading $pkg"
  (cd "$WORK" && apt-get download -qq "$pkg" >/dev/null 2>&1) ||
    (apt-get update -qq >/dev/null && cd "$WORK" && apt-get download -qq "$pkg" >/dev/null)
  dpkg-deb -x "$WORK"/"$pkg"_*.deb "$WORK/pkg"

  local vmlinuz version
  vmlinuz="$(find "$WORK/pkg/boot" -name 'vmlinuz-*' | head -n 1)"
  version="${vmlinuz##*/vmlinuz-}"
  rm -rf "$OUT/modules.new"
  mkdir -p "$OUT/modules.new"
  local m f
  for m in "${MODULES[@]}"; do
    f="$(find "$WORK/pkg/lib/modules/$version" -name "$m.ko" -o -name "$m.ko.xz" | head -n 1)"
    [[ -n "$f" ]] || continue
    if [[ "$f" == *.xz ]]; then
      xz -dc "$f" >"$OUT/modules.new/$m.ko"
    else
      cp "$f" "$OUT/modules.new/$m.ko"
    fi
  done
  echo "${MODULES[*]}" >"$OUT/modules.new/.list"
  rm -rf "$OUT/modules"
  mv "$OUT/modules.new" "$OUT/modules"
  cp "$vmlinuz" "$OUT/vmlinuz.new"
  mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
  echo "$version" >"$OUT/kernel-version"
  say "kernel: $version in $OUT"
}

write_init() {
  cat <<'EOF'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do
  [ -f "/lib/modules/$m.ko" ] && insmod "/lib/modules/$m.ko" 2>/dev/null
done
echo "stackling-guest: boot $(uname -r)"
mkdir -p /mnt/config
CONFIG=/mnt/config/openstack/latest
for d in /dev/vd*; do
  [ -b "$d" ] || continue
  if mount -t iso9660 -o ro "$d" /mnt/config 2>/dev/null; then
    if [ -d "$CONFIG" ]; then
      echo "stackling-guest: config-drive ${d##*/}"
      break
    fi
    umount /mnt/config
  fi
done
ip link set lo up
if udhcpc -i eth0 -n -q -t 30 -T 2 -s /etc/udhcpc.script >/dev/null 2>&1; then
  echo "stackling-guest: ip $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
else
  echo "stackling-guest: no-dhcp"
fi
for d in /sys/block/vd*; do [ -e "$d" ] && echo "stackling-guest: disk ${d##*/}"; done
mkdir -p /www
echo "stackling-guest $(hostname)" >/www/index.html
httpd -p 80 -h /www
echo "stackling-guest: ready"
if [ -f "$CONFIG/user_data" ]; then
  cp "$CONFIG/user_data" /tmp/user_data
  echo "stackling-guest: user-data start"
  sh /tmp/user_data </dev/null 2>&1
  echo "stackling-guest: user-data exit $?"
fi
while :; do sleep 3600; done
EOF
}

write_udhcpc_script() {
  cat <<'EOF'
#!/bin/sh
case "$1" in
  deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    [ -n "$hostname" ] && hostname "$hostname"
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
exit 0
EOF
}

build_initramfs() {
  local stage="$WORK/initramfs"
  mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules}
  cp /bin/busybox "$stage/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$stage/bin/$applet"
  done
  cp "$OUT"/modules/*.ko "$stage/lib/modules/" 2>/dev/null || true
  printf '%s\n' "${MODULES[@]}" >"$stage/etc/modules"
  write_init >"$stage/init"
  write_udhcpc_script >"$stage/etc/udhcpc.script"
  chmod 0755 "$stage/init" "$stage/etc/udhcpc.script"
  (cd "$stage" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -9) \
    >"$OUT/initramfs.gz.new"
  mv "$OUT/initramfs.gz.new" "$OUT/initramfs.gz"
  say "initramfs: $OUT/initramfs.gz"
}

disk_tools() { command -v syslinux >/dev/null && command -v mcopy >/dev/null &&
  command -v mkfs.fat >/dev/null && command -v qemu-img >/dev/null; }

# A partitionless FAT disk whose boot sector is SYSLINUX's: SeaBIOS boots it as a hard
# disk, SYSLINUX loads the same kernel and initramfs. No loop device, no mount.
# no_timer_check: under TCG on a loaded host the kernel's early timer IRQ test can miss
# its window and panic ("IO-APIC + timer doesn't work!"); the guest then never answers
# a device unplug.
build_disk() {
  if ! disk_tools; then
    echo "[guest] syslinux/mtools/dosfstools/qemu-utils missing: no disk.qcow2" >&2
    return 0
  fi
  local raw="$WORK/disk.img" mib
  mib=$((($(stat -c %s "$OUT/vmlinuz") + $(stat -c %s "$OUT/initramfs.gz")) / 1048576 + 8))
  truncate -s "${mib}M" "$raw"
  mkfs.fat -n STACKLING "$raw" >/dev/null
  syslinux --install "$raw"
  printf '%s\n' "DEFAULT tiny" "PROMPT 0" "TIMEOUT 0" "SERIAL 0 115200" "LABEL tiny" \
    "  KERNEL vmlinuz" "  INITRD initramfs.gz" "  APPEND console=ttyS0 quiet no_timer_check" >"$WORK/syslinux.cfg"
  mcopy -i "$raw" "$OUT/vmlinuz" "$OUT/initramfs.gz" "$WORK/syslinux.cfg" ::
  qemu-img convert -O qcow2 "$raw" "$OUT/disk.qcow2.new"
  mv "$OUT/disk.qcow2.new" "$OUT/disk.qcow2"
  say "disk: $OUT/disk.qcow2"
}

# Rebuild the initramfs when its recipe (this script) changes.
recipe="$(sha256sum "${BASH_SOURCE[0]}" /bin/busybox | sha256sum | cut -d' ' -f1)"
if [[ -s "$OUT/vmlinuz" && -s "$OUT/initramfs.gz" && -d "$OUT/modules" &&
  "$(cat "$OUT/.recipe" 2>/dev/null)" == "$recipe" ]]; then
  [[ -s "$OUT/disk.qcow2" ]] || build_disk
  say "guest: ready in $OUT ($(cat "$OUT/kernel-version"))"
  exit 0
fi
# A changed module list needs the kernel package again (its modules are not kept).
[[ -s "$OUT/vmlinuz" && -d "$OUT/modules" &&
  "$(cat "$OUT/modules/.list" 2>/dev/null)" == "${MODULES[*]}" ]] || fetch_kernel
build_initramfs
build_disk
echo "$recipe" >"$OUT/.recipe"
