"""Per-project quotas of networks, subnets, ports, routers, floating IPs, security groups
and rules, counted in the transaction that inserts or deletes each row.

The engine is common-rpc's (``common_rpc.quotas``) over this service's ``quota_usages``
and ``quota_limits``; a refusal is Neutron's 409 ``OverQuota`` and the request's
transaction rolls back, so nothing of it is created. Usage always equals the rows:

- ``reserve`` (limit checked): the resource a request creates, through the API or over
  RPC (compute's ports): networks, subnets, ports, routers, floating IPs, security groups
  and rules.
- ``record`` (counted, never refused), as Neutron counts rows its plugins create for a
  request without checking a quota: a network's DHCP port (the network's project), a
  router interface port made from a subnet (the router's project), a project's
  ``default`` security group with its four rules, the two egress rules a new group
  comes with. A project may so hold more than its limit; its next own create is refused.
- Ports without a project are not counted: a router's gateway port and a floating IP's
  address holder (Neutron creates both with an empty tenant).
- ``release``: every delete, also of rows that go as a side effect (a network's DHCP
  port and subnets, a group's rules, a floating IP's or a gateway's port).

Lock order (PostgreSQL): a create reserves right after inserting its row, so the parent
rows its foreign keys lock come before the usage row, as a delete locks the parent
(network, security group) before releasing; a transaction that moves several usage rows
moves them in ``RESOURCES`` order (a subnet before its DHCP port, a group before its
rules). Two requests of one project then never wait on each other in a cycle.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.quotas import Quotas

from ..db.models import QuotaLimit, QuotaUsage
from ..settings import NetworkSettings
from .errors import invalid, over_quota

RESOURCES = (
    "network",
    "subnet",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
)

QUOTAS = Quotas(QuotaUsage, QuotaLimit, RESOURCES, over_limit=over_quota, invalid=invalid)


def defaults(settings: NetworkSettings) -> dict[str, int]:
    return {
        "network": settings.quota_network,
        "subnet": settings.quota_subnet,
        "port": settings.quota_port,
        "router": settings.quota_router,
        "floatingip": settings.quota_floatingip,
        "security_group": settings.quota_security_group,
        "security_group_rule": settings.quota_security_group_rule,
    }


async def reserve(
    session: AsyncSession, settings: NetworkSettings, project: str, resource: str, amount: int = 1
) -> None:
    """Take ``amount`` of ``resource`` for the row about to be inserted, or 409 OverQuota."""
    if project:
        await QUOTAS.reserve(session, project, {resource: amount}, defaults(settings))


async def record(session: AsyncSession, project: str, resource: str, amount: int = 1) -> None:
    """Count rows made as a side effect of another request (never refused)."""
    if project:
        await QUOTAS.record(session, project, {resource: amount})


async def release(session: AsyncSession, project: str, resource: str, amount: int = 1) -> None:
    """Give back what deleted rows held, in the transaction that deleted them."""
    if project:
        await QUOTAS.release(session, project, {resource: amount})
