"""The payload of every event type, by producing service.

Payloads describe the resource after the change (``.end``) or the request (``.start``);
ids are strings, times ISO 8601. Add fields freely; removing or retyping one needs a
new version.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from .registry import register


class _Payload(BaseModel):
    # Newer producers may add fields; older consumers must not break on them.
    model_config = ConfigDict(extra="allow")


class ServerPayload(_Payload):
    id: str
    project_id: str
    name: str | None = None
    status: str
    host: str | None = None
    fault: str | None = None


class ServerInterfacePayload(ServerPayload):
    """A server and the port attached to it or detached from it (os-interface)."""

    port_id: str
    network_id: str | None = None


class PortPayload(_Payload):
    id: str
    project_id: str
    network_id: str
    status: str
    device_id: str | None = None
    device_owner: str | None = None
    host: str | None = None
    mac_address: str | None = None
    fixed_ips: list[dict[str, str]] = []


class NetworkPayload(_Payload):
    id: str
    project_id: str
    name: str | None = None
    status: str


class SubnetPayload(_Payload):
    id: str
    project_id: str
    network_id: str
    name: str | None = None
    cidr: str
    ip_version: int = 4
    gateway_ip: str | None = None
    enable_dhcp: bool = True


class SecurityGroupPayload(_Payload):
    id: str
    project_id: str
    name: str | None = None


class SecurityGroupRulePayload(_Payload):
    id: str
    project_id: str
    security_group_id: str
    direction: str
    ethertype: str
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


class RouterPayload(_Payload):
    id: str
    project_id: str
    name: str | None = None
    status: str
    external_network_id: str | None = None
    enable_snat: bool | None = None
    interfaces: list[dict[str, str]] = []


class FloatingIpPayload(_Payload):
    id: str
    project_id: str
    floating_network_id: str
    floating_ip_address: str
    status: str
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None
    # Moves with every change: a consumer keeping a copy applies only a newer one (events
    # of one floating IP may arrive out of order).
    revision_number: int | None = None


class VolumePayload(_Payload):
    id: str
    project_id: str
    name: str | None = None
    status: str
    size: int
    attachments: list[dict[str, str]] = []


class SnapshotPayload(_Payload):
    id: str
    project_id: str
    volume_id: str
    status: str
    size: int


class ServiceHeartbeat(_Payload):
    """An agent or API process saying it is alive (used for liveness tables)."""

    service: str
    host: str
    binary: str
    at: datetime


def _register() -> None:
    for action in (
        *("create", "update", "delete", "start", "stop", "reboot", "attach", "detach"),
        *("pause", "unpause", "suspend", "resume", "lock", "unlock", "rebuild"),
        *("resize", "resize_confirm", "resize_revert", "shelve", "shelve_offload", "unshelve"),
        "snapshot",
    ):
        for phase in ("start", "end"):
            register(
                f"compute.server.{action}.{phase}",
                ServerPayload,
                f"A server {action} {'began' if phase == 'start' else 'finished'}.",
            )
    for action, what in (
        ("interface_attach", "A port attach to a server"),
        ("interface_detach", "A port detach from a server"),
    ):
        for phase in ("start", "end"):
            register(
                f"compute.server.{action}.{phase}",
                ServerInterfacePayload,
                f"{what} (os-interface) {'began' if phase == 'start' else 'finished'}.",
            )
    # A detach that failed for good (the guest kept the device): attached again, ``fault``.
    register(
        "compute.server.detach.error",
        ServerPayload,
        "A volume detach failed; the volume stays attached (``fault`` says why).",
    )
    register(
        "compute.server.interface_detach.error",
        ServerInterfacePayload,
        "A port detach (os-interface) failed; the port stays attached (``fault`` says why).",
    )
    for action in ("create", "update", "delete"):
        register(f"network.port.{action}.end", PortPayload, f"A port {action} finished.")
        register(f"network.network.{action}.end", NetworkPayload, f"A network {action} finished.")
        register(f"network.subnet.{action}.end", SubnetPayload, f"A subnet {action} finished.")
        register(
            f"network.security_group.{action}.end",
            SecurityGroupPayload,
            f"A security group {action} finished.",
        )
    for action in ("create", "update", "delete"):
        register(f"network.router.{action}.end", RouterPayload, f"A router {action} finished.")
        register(
            f"network.floatingip.{action}.end",
            FloatingIpPayload,
            f"A floating IP {action} finished.",
        )
    for action in ("create", "delete"):
        register(
            f"network.security_group_rule.{action}.end",
            SecurityGroupRulePayload,
            f"A security group rule {action} finished.",
        )
    for action in ("create", "update", "delete", "extend", "attach", "detach"):
        register(f"volume.volume.{action}.end", VolumePayload, f"A volume {action} finished.")
    for action in ("create", "delete"):
        register(f"volume.snapshot.{action}.end", SnapshotPayload, f"A snapshot {action} finished.")
    for service in ("compute", "network", "volume"):
        register(f"{service}.service.heartbeat", ServiceHeartbeat, f"A {service} process is alive.")


_register()
