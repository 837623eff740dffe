"""Ports: a MAC unique per network, addresses from IPAM, security groups, host binding."""

from __future__ import annotations

import ipaddress
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from common_rpc.context import RequestContext
from common_rpc.errors import Conflict

from ..db.models import IpAllocation, Network, Port, PortSecurityGroup, Subnet
from ..settings import NetworkSettings
from . import (
    events,
    floatingips,
    ipam,
    networks,
    policy,
    port_rows,
    quotas,
    security_groups,
    subnet_attrs,
)
from .changes import GENERATIONS, REWIRED_KEY, bump_generation
from .common import flag, new_id, owner_of, owns, standard_view, text, touch, uuid_attr
from .errors import (
    bad_attribute,
    conflict,
    invalid,
    invalid_input,
    not_found,
    policy_denied,
    required,
)
from .port_rows import DHCP_OWNER, UUID, get, insert_with_mac, mac_address, reload, visible

# Neutron's vnic types; this cloud plugs ``normal`` (tap) ports only.
VNIC_TYPES = (
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
)

# What in a port update changes its firewall or the member sets of its groups.
SECURITY_KEYS = {"security_groups", "fixed_ips", "port_security_enabled", "mac_address"}


def view(port: Port, ctx: RequestContext) -> dict[str, Any]:
    out = standard_view(port) | {
        "network_id": port.network_id,
        "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up,
        "status": port.status,
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "fixed_ips": [
            {"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips
        ],
        "security_groups": [link.security_group_id for link in port.security_groups],
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "port_security_enabled": port.port_security_enabled,
        "binding:vnic_type": "normal",
    }
    if ctx.is_admin:
        out["binding:host_id"] = port.host_id
        out["binding:vif_type"] = "bridge" if port.host_id else "unbound"
        out["binding:vif_details"] = {}
        out["binding:profile"] = {}
    return out


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[Port]:
    return list(await session.scalars(visible(ctx)))


async def _assign_ips(
    session: AsyncSession, port: Port, network: Network, requested: Any
) -> list[IpAllocation]:
    """Allocate the requested fixed IPs, or one from the first IPv4 subnet with room."""
    subnets = {s.id: s for s in network.subnets}
    if requested is None:
        candidates = [s for s in network.subnets if s.ip_version == 4]
        for index, subnet in enumerate(candidates):
            try:
                return [await ipam.allocate(session, subnet, port.id)]
            except Conflict:
                # A full subnet: the next IPv4 subnet of the network may have room.
                if index == len(candidates) - 1:
                    raise
        return []
    held = []
    for entry in fixed_ip_entries(requested):
        subnet = _subnet_for(entry, subnets, network.id)
        held.append(await ipam.allocate(session, subnet, port.id, entry.get("ip_address")))
    return held


def fixed_ip_entries(requested: Any) -> list[dict[str, Any]]:
    """The API layer's ``fixed_ips`` check; each address made canonical (RFC 5952)."""
    if not isinstance(requested, list):
        raise bad_attribute("fixed_ips", f"Invalid data format for fixed IP: '{requested}'")
    entries: list[dict[str, Any]] = []
    seen: list[Any] = []
    for entry in requested:
        if not isinstance(entry, dict):
            raise bad_attribute("fixed_ips", f"Invalid data format for fixed IP: '{entry}'")
        entry = dict(entry)
        if "ip_address" in entry:
            if entry["ip_address"] in seen:
                raise bad_attribute("fixed_ips", f"Duplicate IP address '{entry['ip_address']}'")
            seen.append(entry["ip_address"])
            addr = subnet_attrs.address(entry["ip_address"])
            if addr is None:
                raise bad_attribute("fixed_ips", subnet_attrs.not_an_address(entry["ip_address"]))
            entry["ip_address"] = str(addr)
        if "subnet_id" in entry and not UUID.match(str(entry["subnet_id"])):
            raise bad_attribute("fixed_ips", f"'{entry['subnet_id']}' is not a valid UUID")
        entries.append(entry)
    return entries


def _subnet_for(entry: dict[str, Any], subnets: dict[str, Subnet], network_id: str) -> Subnet:
    if entry.get("subnet_id"):
        subnet = subnets.get(str(entry["subnet_id"]))
        if subnet is None:
            raise invalid_input(
                f"Failed to create port on network {network_id}, because fixed_ips "
                f"included invalid subnet {entry['subnet_id']}"
            )
        return subnet
    if entry.get("ip_address") is None:
        raise invalid_input("IP allocation requires subnet_id or ip_address")
    addr = ipaddress.ip_address(entry["ip_address"])
    for subnet in subnets.values():
        net = ipaddress.ip_network(subnet.cidr)
        low, high = ipam.host_bounds(net)
        if addr.version == net.version and low <= int(addr) <= high:
            return subnet
    raise invalid(
        f"IP address {addr} is not a valid IP for any of the subnets on the specified network.",
        "InvalidIpForNetwork",
    )


async def _set_groups(
    session: AsyncSession, ctx: RequestContext, port: Port, requested: Any, *, new: bool = False
) -> list[PortSecurityGroup]:
    """Link the port to the groups asked for (or its project's default); the links made."""
    if not new:
        await session.execute(delete(PortSecurityGroup).where(PortSecurityGroup.port_id == port.id))
    if requested is None:
        if not port.port_security_enabled or port.device_owner.startswith("network:"):
            return []
        group_id = await security_groups.link_default(session, ctx, port.id, port.project_id)
        return [PortSecurityGroup(port_id=port.id, security_group_id=group_id)]  # written
    else:
        if not isinstance(requested, list):
            raise bad_attribute("security_groups", f"'{requested}' is not a list")
        for group_id in requested:
            if not isinstance(group_id, str) or not UUID.match(group_id):
                raise invalid_input(f"'{group_id}' is not an integer or uuid")
        ids = list(dict.fromkeys(str(i) for i in requested))
        if ids and not port.port_security_enabled:
            raise invalid(
                "Port security must be enabled and port must have an IP address in order "
                "to use security groups.",
                "PortSecurityAndIPRequiredForSecurityGroups",
            )
        for group_id in ids:
            group = await security_groups.get(session, ctx, group_id)
            if group.project_id != port.project_id:
                raise not_found("SecurityGroup", group_id)
    links = [PortSecurityGroup(port_id=port.id, security_group_id=group_id) for group_id in ids]
    session.add_all(links)
    return links


def _check_extras(body: dict[str, Any]) -> None:
    """Attributes shown but not implemented: their empty values only (never dropped
    silently), a valid vnic type, a dictionary for the binding profile."""
    for key in ("allowed_address_pairs", "extra_dhcp_opts"):
        value = body.get(key)
        if value is not None and not isinstance(value, list):
            raise bad_attribute(key, f"'{value}' is not a list")
        if value:
            raise bad_attribute(key, f"{key} are not supported by this cloud")
    vnic = body.get("binding:vnic_type", "normal")
    if vnic not in VNIC_TYPES:
        raise bad_attribute("binding:vnic_type", f"'{vnic}' is not in {list(VNIC_TYPES)}")
    if vnic != "normal":
        raise bad_attribute("binding:vnic_type", f"vnic type '{vnic}' is not supported")
    profile = body.get("binding:profile")
    if profile is not None and not isinstance(profile, dict):
        raise bad_attribute("binding:profile", f"'{profile}' is not a dictionary")


async def create(
    session: AsyncSession, ctx: RequestContext, settings: NetworkSettings, body: dict[str, Any]
) -> Port:
    if not body.get("network_id"):
        raise required("network_id")
    network_id = uuid_attr(body, "network_id")
    mac = mac_address(body["mac_address"]) if body.get("mac_address") is not None else None
    if "fixed_ips" in body:
        fixed_ip_entries(body["fixed_ips"])  # its shape is checked before any policy
    _check_extras(body)
    network = await networks.get(session, ctx, network_id)
    if not (owns(ctx, network.project_id) or network.shared):
        # Neutron's create_port rule: the network's owner, or a shared network. Another
        # project's external network is visible, but not to plug into.
        raise policy_denied("create_port")
    policy.enforce(ctx, "create", "port", body, network=network)
    port = Port(
        id=new_id(),
        project_id=owner_of(ctx, body),
        network_id=network.id,
        name=text(body, "name"),
        description=text(body, "description"),
        admin_state_up=flag(body, "admin_state_up", True),
        status="DOWN",
        device_id=text(body, "device_id"),
        device_owner=text(body, "device_owner"),
        host_id=text(body, "binding:host_id"),
        port_security_enabled=flag(body, "port_security_enabled", network.port_security_enabled),
    )
    await insert_with_mac(session, port, mac)
    # One UPDATE in the common case; over the limit the transaction, insert included, rolls
    # back. Taken after the insert: its network's row lock comes first, as for a subnet's.
    await quotas.reserve(session, settings, port.project_id, "port")
    held = await _assign_ips(session, port, network, body.get("fixed_ips"))
    links = await _set_groups(session, ctx, port, body.get("security_groups"), new=True)
    await session.flush()
    # A new port's relations are exactly what was just written: no reload needed.
    set_committed_value(port, "fixed_ips", sorted(held, key=lambda a: a.ip_address))
    set_committed_value(port, "security_groups", links)
    await events.port_event(session, ctx, port, events.CREATE)
    return port


async def _replace_ips(session: AsyncSession, port: Port, requested: Any) -> None:
    network = (await session.scalars(select(Network).where(Network.id == port.network_id))).one()
    keep = {(a.subnet_id, a.ip_address) for a in port.fixed_ips}
    wanted: list[dict[str, Any]] = []
    subnets = {s.id: s for s in network.subnets}
    held = set()
    for entry in fixed_ip_entries(requested):
        subnet = _subnet_for(entry, subnets, network.id)
        key = (subnet.id, entry.get("ip_address"))
        if key in keep:
            held.add(key)
        else:
            wanted.append(entry | {"subnet_id": subnet.id})
    for subnet_id, address in keep - held:
        await session.execute(
            delete(IpAllocation).where(
                IpAllocation.subnet_id == subnet_id, IpAllocation.ip_address == address
            )
        )
    if wanted:
        await _assign_ips(session, port, network, wanted)


async def update(
    session: AsyncSession, ctx: RequestContext, port_id: str, body: dict[str, Any]
) -> Port:
    mac = mac_address(body["mac_address"]) if "mac_address" in body else None
    if "fixed_ips" in body:
        fixed_ip_entries(body["fixed_ips"])
    _check_extras(body)
    port = await get(session, ctx, port_id)
    # The network as it is, whoever may see it now: its owner decides the attribute rules.
    network = (await session.scalars(select(Network).where(Network.id == port.network_id))).one()
    policy.enforce(ctx, "update", "port", body, network=network)
    if await port_rows.held_by_service(session, port) and any(
        key in body and body[key] != getattr(port, key) for key in ("device_id", "device_owner")
    ):
        raise conflict(
            "PortInUse",
            f"Unable to complete operation on port {port_id} for network {port.network_id}. "
            f"Port already has an attached device {port.device_id}.",
        )
    for key in ("name", "description", "device_id", "device_owner"):
        if key in body:
            setattr(port, key, text(body, key))
    if "binding:host_id" in body:
        port.host_id = text(body, "binding:host_id")
    if "admin_state_up" in body:
        port.admin_state_up = flag(body, "admin_state_up", port.admin_state_up)
    if "port_security_enabled" in body:
        port.port_security_enabled = flag(body, "port_security_enabled", True)
    if mac is not None and mac != port.mac_address:
        await _change_mac(session, port, mac)
    if "fixed_ips" in body:
        if port.service_owned and port.device_owner == DHCP_OWNER:
            raise conflict("PortInUse", f"Port {port_id} is a DHCP port: its addresses are fixed.")
        await _replace_ips(session, port, body["fixed_ips"])
    groups_before = {link.security_group_id for link in port.security_groups}
    if "security_groups" in body:
        await _set_groups(session, ctx, port, body["security_groups"] or [])
    elif "port_security_enabled" in body and not port.port_security_enabled:
        if port.security_groups:
            raise conflict(
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or IP "
                "address until security group is removed.",
            )
    touch(port)
    await reload(session, port)
    if SECURITY_KEYS & body.keys():
        # Its host must apply new rules, and its groups' member sets change everywhere.
        await bump_generation(session, "ports", port.id)
        groups = groups_before | {link.security_group_id for link in port.security_groups}
        session.info[REWIRED_KEY] = (port.id, sorted(groups))
    await events.port_event(session, ctx, port, events.UPDATE)
    return port


async def remove(session: AsyncSession, ctx: RequestContext, port_id: str) -> Port:
    """Delete a port a tenant may delete; the removed row (its host, its network)."""
    port = await get(session, ctx, port_id)
    if await port_rows.held_by_service(session, port):
        # Neutron's rule: these go with their subnet, router or floating IP. A port its
        # project made, whatever its device_owner says, is its project's to delete.
        raise conflict(
            "ServicePortInUse",
            f"Port {port_id} cannot be deleted directly via the port API: "
            f"has device owner {port.device_owner}.",
        )
    await port_rows.delete_row(session, port)
    # A floating IP on the port lost its key (SET NULL): drop its mapping in this same
    # transaction; its router is marked changed for the caller to push after the commit.
    await floatingips.release_orphans(session)
    await events.port_event(session, ctx, port, events.DELETE)
    return port


async def _change_mac(session: AsyncSession, port: Port, mac: str) -> None:
    """An admin's new MAC: not while a host has the port plugged, unique on its network."""
    if port.host_id:
        raise conflict(
            "PortBound",
            f"Unable to complete operation on port {port.id}, port is already bound, port "
            f"type: bridge, old_mac {port.mac_address}, new_mac {mac}.",
        )
    network_id = port.network_id  # the row is expired if the savepoint rolls back
    await session.flush()  # nothing pending: the savepoint below holds this change only
    try:
        async with session.begin_nested():
            port.mac_address = mac
            await session.flush()
    except IntegrityError:
        raise conflict(
            "MacAddressInUse",
            f"Unable to complete operation for network {network_id}. "
            f"The mac address {mac} is in use.",
        ) from None


async def bind(session: AsyncSession, ctx: RequestContext, port_id: str, host: str) -> Port:
    """Record the host that will plug the port; it stays DOWN until that host reports.

    Both the port's and its network's generation move, so the host applies this state
    and ignores any older command still in flight.
    """
    port = await get(session, ctx, port_id)
    if port.host_id != host:
        port.status = "DOWN"
    port.host_id = host
    await bump_generation(session, "networks", port.network_id)
    await bump_generation(session, "ports", port.id)
    touch(port)
    await reload(session, port)
    await events.port_event(session, ctx, port, events.UPDATE)
    return port


async def unbind(session: AsyncSession, ctx: RequestContext, port_id: str) -> tuple[Port, str]:
    """Clear the port's host (its server went); DOWN until bound again. The old host."""
    port = await get(session, ctx, port_id)
    old_host = port.host_id
    if old_host:
        port.host_id = ""
        port.status = "DOWN"
        await bump_generation(session, "networks", port.network_id)
        await bump_generation(session, "ports", port.id)
        touch(port)
        await reload(session, port)
        await events.port_event(session, ctx, port, events.UPDATE)
    return port, old_host


async def mark_active(
    session: AsyncSession, ctx: RequestContext, port_id: str, generation: int
) -> Port:
    """DOWN -> ACTIVE, only if nobody re-bound the port since ``generation`` was wired.

    A compare-and-swap: the event is written only by the transaction that moved it.
    """
    ports = GENERATIONS["ports"]
    moved = await session.execute(
        sa.update(Port)
        .where(Port.id == port_id, Port.status == "DOWN")
        .where(
            select(ports.c.generation).where(ports.c.id == port_id).scalar_subquery() == generation
        )
        .values(status="ACTIVE")
        .execution_options(synchronize_session=False)
    )
    port = await get(session, ctx, port_id)
    await session.refresh(port, ["status"])
    if moved.rowcount == 1:  # type: ignore[attr-defined]
        touch(port)
        await reload(session, port)
        await events.port_event(session, ctx, port, events.UPDATE)
    return port
