"""Host data-plane drivers of compute-agent: the hypervisor behind ``VirtDriver``, loaded
by name from the entry points of group ``stackling.compute.drivers``.

driver = load_virt("libvirt", VirtConfig(uri="qemu:///system", virt_type="qemu",
                                          prefix="stackling-", instances_dir=Path(...)))

Built in: ``virt.libvirt``; another package adds one by declaring the same kind of entry
point. A name nobody installed raises ``PluginError`` (a start-up error) listing those
that are.
"""

from __future__ import annotations

from common_rpc.chassis.plugins import load_driver

from .base import VirtConfig, VirtDriver, VirtDriverFactory

SERVICE = "compute"
KINDS = ("virt",)


def load_virt(name: str, config: VirtConfig) -> VirtDriver:
    factory: VirtDriverFactory = load_driver(SERVICE, "virt", name)
    return factory.from_config(config)
