"""Network IP availability (admin): per network and subnet, the addresses its allocation
pools hold (``total_ips``) and those ports hold (``used_ips``), as Neutron counts them.

    GET /v2.0/network-ip-availabilities[/{network_id}]
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext

from ..db.models import IpAllocation, Network
from .errors import not_found


def pool_size(pools: list[dict[str, str]]) -> int:
    """The addresses of the allocation pools (Neutron's total: pools, not the CIDR)."""
    return sum(
        int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1
        for p in pools
    )


async def _used(session: AsyncSession, subnet_ids: list[str]) -> dict[str, int]:
    if not subnet_ids:
        return {}
    rows = await session.execute(
        select(IpAllocation.subnet_id, func.count())
        .where(IpAllocation.subnet_id.in_(subnet_ids))
        .group_by(IpAllocation.subnet_id)
    )
    return {subnet_id: int(count) for subnet_id, count in rows}


async def _views(session: AsyncSession, nets: list[Network]) -> list[dict[str, Any]]:
    subnets = [s for n in nets for s in n.subnets]
    used = await _used(session, [s.id for s in subnets])
    out = []
    for net in nets:
        per_subnet = [
            {
                "subnet_id": s.id,
                "subnet_name": s.name,
                "cidr": s.cidr,
                "ip_version": s.ip_version,
                "total_ips": pool_size(s.allocation_pools),
                "used_ips": used.get(s.id, 0),
            }
            for s in net.subnets
        ]
        out.append(
            {
                "network_id": net.id,
                "network_name": net.name,
                "project_id": net.project_id,
                "tenant_id": net.project_id,
                "total_ips": sum(s["total_ips"] for s in per_subnet),
                "used_ips": sum(s["used_ips"] for s in per_subnet),
                "subnet_ip_availability": per_subnet,
            }
        )
    return out


async def list_all(session: AsyncSession, ctx: RequestContext) -> list[dict[str, Any]]:
    """Every network's availability for an admin; none for others (Neutron's policy
    filters each item out)."""
    if not ctx.is_admin:
        return []
    nets = list(await session.scalars(select(Network).order_by(Network.created_at, Network.id)))
    return await _views(session, nets)


async def get(session: AsyncSession, ctx: RequestContext, network_id: str) -> dict[str, Any]:
    net = await session.get(Network, network_id) if ctx.is_admin else None
    if net is None:
        raise not_found("Network", network_id)
    return (await _views(session, [net]))[0]
