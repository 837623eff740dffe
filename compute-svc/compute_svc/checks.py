"""Host checks for the compute agent: libvirt, QEMU (TCG), KVM and qemu-img.

KVM is never required: a host where ``/dev/kvm`` is missing, or present but unreliable
(nested virtualization), still runs guests with ``virt_type=qemu`` (TCG).

    >>> check_kvm(device=Path("/nonexistent")).status
    <Status.WARN: 'WARN'>
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from common_rpc.cli.probe import CheckResult, Status, binary_check, find, run

GROUP = "compute"
KVM_GET_API_VERSION = 0xAE00  # _IO(KVMIO, 0x00)
LIBVIRT_FIX = "apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"


def check_libvirtd(path: str | None = None) -> CheckResult:
    """The libvirt daemon is installed."""
    return binary_check("libvirtd", GROUP, "libvirtd", LIBVIRT_FIX, path)


def check_libvirt_answers(path: str | None = None, timeout: float = 5.0) -> CheckResult:
    """``qemu:///system`` answers ``virsh version`` within ``timeout`` seconds."""
    name = "libvirt-qemu-system"
    virsh = find("virsh", path)
    if virsh is None:
        return CheckResult(name, GROUP, Status.MISSING, "virsh not found in PATH", LIBVIRT_FIX)
    code, out = run([virsh, "-c", "qemu:///system", "version"], timeout=timeout)
    if code != 0:
        last = out.splitlines()[-1] if out else f"exit {code}"
        return CheckResult(
            name,
            GROUP,
            Status.MISSING,
            f"qemu:///system does not answer: {last}",
            "start the daemons: virtlogd -d; libvirtd -d (or systemctl start libvirtd)",
        )
    lines = out.splitlines()
    hypervisor = next((line for line in lines if "hypervisor" in line.lower()), lines[0])
    return CheckResult(name, GROUP, Status.OK, f"qemu:///system answers ({hypervisor.strip()})")


def check_qemu_system(path: str | None = None) -> CheckResult:
    """qemu-system-x86_64, which runs guests (TCG always; KVM when usable)."""
    result = binary_check(
        "qemu-system", GROUP, "qemu-system-x86_64", "apt-get install qemu-system-x86", path
    )
    if result.status is Status.OK:
        return CheckResult(result.name, GROUP, Status.OK, f"TCG available: {result.detail}")
    return result


def check_qemu_img(path: str | None = None) -> CheckResult:
    """qemu-img, which creates and converts raw/qcow2 disk images."""
    return binary_check("qemu-img", GROUP, "qemu-img", "apt-get install qemu-utils", path)


def check_kvm(
    device: Path = Path("/dev/kvm"),
    cpuinfo: Path = Path("/proc/cpuinfo"),
    path: str | None = None,
) -> CheckResult:
    """KVM acceleration: OK on bare metal with a usable ``/dev/kvm``, WARN otherwise."""
    name = "kvm"
    tcg = (
        "TCG available (virt_type=qemu)"
        if find("qemu-system-x86_64", path)
        else "TCG unavailable too (no qemu-system-x86_64)"
    )
    if not device.exists():
        return CheckResult(
            name,
            GROUP,
            Status.WARN,
            f"no {device}; {tcg}",
            "enable VT-x/AMD-V and modprobe kvm_intel or kvm_amd",
        )
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        try:
            version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        finally:
            os.close(fd)
    except OSError as exc:
        return CheckResult(
            name,
            GROUP,
            Status.WARN,
            f"{device} not usable ({exc.strerror}); {tcg}",
            "run as root or join the kvm group",
        )
    if _is_virtual_machine(cpuinfo):
        return CheckResult(
            name,
            GROUP,
            Status.WARN,
            f"{device} answers (API {version}) but this host is itself a VM: "
            f"nested KVM guests may start yet never run; {tcg}",
            "boot a test guest with virt_type=kvm; if it hangs, set virt_type=qemu",
        )
    return CheckResult(name, GROUP, Status.OK, f"{device} usable (API {version})")


def _is_virtual_machine(cpuinfo: Path) -> bool:
    """True when the CPU flags include ``hypervisor`` (this host runs under one)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return "hypervisor" in line.partition(":")[2].split()
    return False


# What `stackling doctor` runs for the compute group (entry point `stackling.doctor`).
CHECKS: list[Callable[[], CheckResult]] = [
    check_libvirtd,
    check_libvirt_answers,
    check_qemu_system,
    check_kvm,
    check_qemu_img,
]
