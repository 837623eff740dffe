"""The libvirt/QEMU driver: typed domain descriptions, qcow2 disks, config drives."""
