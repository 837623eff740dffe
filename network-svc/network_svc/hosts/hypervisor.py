"""One libvirt daemon per simulated host, so its guests' taps are made on its bridges.

libvirtd makes a guest's tap in its own network namespace and adds it to the bridge its
``<interface type='bridge'>`` names. Run inside the host's namespace, with the host's
own copy of libvirt's directories (a private mount namespace binds them over the
machine's), the domain XML of a real host works unchanged: the tap appears in the host
namespace on the network-agent's bridge, QEMU is a process of the host (killed with it),
and ``virsh -c <uri>`` lists that host's guests only.

    fabric.start_libvirt(host)            # virtlogd + libvirtd in the host's namespaces
    libvirt_uri(host)                     # qemu:///system?socket=<state>/libvirt/run/libvirt-sock

Run by ``start_libvirt`` as ``nsenter --net=... unshare --mount --propagation slave
python -m network_svc.hosts.hypervisor DIR``: it binds DIR's run, lib, cache, log and etc
over libvirt's, starts virtlogd, then becomes libvirtd.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from common_rpc.chassis.commands import run

# this host's directory -> the machine's
MOUNTS = {
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
    "etc": "/etc/libvirt",
}


def prepare(directory: Path) -> None:
    """The host's libvirt directories; its configuration is the machine's, without the
    machine's domains and secrets."""
    for name in MOUNTS:
        (directory / name).mkdir(parents=True, exist_ok=True)
    etc = directory / "etc"
    if not any(etc.iterdir()) and Path("/etc/libvirt").is_dir():
        shutil.copytree(
            "/etc/libvirt",
            etc,
            dirs_exist_ok=True,
            ignore=lambda d, names: (
                [n for n in names if n.endswith((".xml", ".base64"))]
                if d.startswith("/etc/libvirt/qemu") or d.startswith("/etc/libvirt/secrets")
                else []
            ),
        )


def socket_path(directory: Path) -> Path:
    return directory / "run" / "libvirt-sock"


def main() -> None:
    directory = Path(sys.argv[1])
    for name, target in MOUNTS.items():
        Path(target).mkdir(parents=True, exist_ok=True)
        run(["mount", "--bind", str(directory / name), target], timeout=10)
    run(["virtlogd", "-d", "-p", str(directory / "virtlogd.pid")], timeout=30)
    os.execvp("libvirtd", ["libvirtd", "-d", "-p", str(directory / "libvirtd.pid")])


if __name__ == "__main__":
    main()
