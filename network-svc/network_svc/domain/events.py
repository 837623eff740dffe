"""The events the network service writes, and those of ports and subnets, which more than
their own module writes (the DHCP port, a router's legs, a network's delete taking its
subnets). Payloads are ``common_rpc.contracts.payloads``; each event goes to the outbox
in the transaction of its change.

    await port_event(session, ctx, port, CREATE)     # network.port.create.end
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import PortPayload, SubnetPayload
from common_rpc.outbox import add_event

from ..db.models import Port, Subnet

NETWORK = "network.network.{action}.end"
SUBNET = "network.subnet.{action}.end"
PORT = "network.port.{action}.end"
SECURITY_GROUP = "network.security_group.{action}.end"
SECURITY_GROUP_RULE = "network.security_group_rule.{action}.end"

CREATE, UPDATE, DELETE = "create", "update", "delete"


def port_payload(port: Port) -> PortPayload:
    return PortPayload(
        id=port.id,
        project_id=port.project_id,
        network_id=port.network_id,
        status=port.status,
        device_id=port.device_id or None,
        device_owner=port.device_owner or None,
        host=port.host_id or None,
        mac_address=port.mac_address,
        fixed_ips=[{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips],
    )


async def port_event(
    session: AsyncSession, ctx: RequestContext | None, port: Port, action: str
) -> None:
    """``network.port.<action>.end``; a port the service owns has no project (None)."""
    await add_event(
        session,
        PORT.format(action=action),
        port_payload(port),
        project_id=port.project_id or None,
        ctx=ctx,
    )


async def subnet_event(
    session: AsyncSession, ctx: RequestContext, subnet: Subnet, action: str
) -> None:
    payload = SubnetPayload(
        id=subnet.id,
        project_id=subnet.project_id,
        network_id=subnet.network_id,
        name=subnet.name,
        cidr=subnet.cidr,
        ip_version=subnet.ip_version,
        gateway_ip=subnet.gateway_ip,
        enable_dhcp=subnet.enable_dhcp,
    )
    await add_event(
        session, SUBNET.format(action=action), payload, project_id=subnet.project_id, ctx=ctx
    )
