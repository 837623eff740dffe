"""Per-project quotas of instances, cores, RAM and key pairs, as Nova counts them.

The engine is common-rpc's (``common_rpc.quotas``) over this service's ``quota_usages``
and ``quota_limits``; a refusal is Nova's 403 and the request's transaction rolls back,
so nothing of it is created. Usage always equals the rows:

- a server takes ``instances`` 1, ``cores`` its flavor's vCPUs and ``ram`` its flavor's
  MB in the transaction that inserts its row, and gives them back in the one that finally
  removes it (``domain.deletion``): a server in ERROR still holds them, as in Nova, until
  it is deleted. That removal is a conditional DELETE, so a delete run again by the
  sweeper or by another replica gives them back once.
- a key pair takes ``key_pairs`` 1 when created or imported and gives it back when
  deleted. Nova counts key pairs per user; here they are counted per project (the project
  the key was made in), like the other resources.

Nova's other quota keys (``metadata_items``, ``injected_files``, ...) are shown with
fixed values: the limits they name are fixed here (``EXTRA``), not per project. The 2.1
schema also requires the network keys Nova proxied before 2.36 (``floating_ips``,
``fixed_ips``, ``security_groups``, ``security_group_rules``): the network service
enforces those with its own quotas, so compute shows them as -1 (no compute limit), as
``/limits`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Forbidden
from common_rpc.quotas import Quotas

from ..db.models import QuotaLimit, QuotaUsage, Server
from ..settings import ComputeSettings
from .errors import invalid

INTEGER = re.compile(r"^-?[0-9]{1,10}$")
RESOURCES = ("instances", "cores", "ram", "key_pairs")
# Nova's keys whose limits are fixed here (what clients read; not enforced per project).
EXTRA = {
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
    "server_groups": 10,
    "server_group_members": 10,
    "floating_ips": -1,
    "fixed_ips": -1,
    "security_groups": -1,
    "security_group_rules": -1,
}


def over_quota(resource: str, requested: int, in_use: int, limit: int) -> Forbidden:
    """Nova's 403 messages for a server create and a key pair over quota."""
    if resource == "key_pairs":
        return Forbidden("Quota exceeded, too many key pairs.")
    return Forbidden(
        f"Quota exceeded for {resource}: Requested {requested}, "
        f"but already used {in_use} of {limit} {resource}"
    )


QUOTAS = Quotas(QuotaUsage, QuotaLimit, RESOURCES, over_limit=over_quota, invalid=invalid)


def defaults(settings: ComputeSettings) -> dict[str, int]:
    return {
        "instances": settings.quota_instances,
        "cores": settings.quota_cores,
        "ram": settings.quota_ram,
        "key_pairs": settings.quota_key_pairs,
    }


def of_server(server: Server) -> dict[str, int]:
    """What one server holds (Nova's order: instances, then cores, then RAM)."""
    return {"instances": 1, "cores": server.vcpus, "ram": server.ram_mb}


async def reserve_server(session: AsyncSession, server: Server, limits: Mapping[str, int]) -> None:
    """In the transaction that inserts the server's row; 403 when over quota.
    ``limits``: the defaults in force (``defaults(settings)``)."""
    await QUOTAS.reserve(session, server.project_id, of_server(server), limits)


async def release_server(session: AsyncSession, server: Server) -> None:
    """In the transaction that removed the server's row (and only if it did)."""
    await QUOTAS.release(session, server.project_id, of_server(server))


async def resize_server(
    session: AsyncSession,
    project: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    limits: Mapping[str, int] | None,
) -> None:
    """A server's cores and RAM counted at the ``new`` flavor instead of the ``old`` one
    (migration flavor dicts: ``vcpus``, ``ram_mb``). Growth is checked against
    ``limits`` (403 over them, as Nova's resize) or, with None, counted unchecked: a
    resize undone gives its growth back and retakes what its shrink released."""
    sizes = {"cores": ("vcpus",), "ram": ("ram_mb",)}
    up: dict[str, int] = {}
    down: dict[str, int] = {}
    for resource, (key,) in sizes.items():
        delta = int(new[key]) - int(old[key])
        if delta > 0:
            up[resource] = delta
        elif delta < 0:
            down[resource] = -delta
    if up:
        if limits is None:
            await QUOTAS.record(session, project, up)
        else:
            await QUOTAS.reserve(session, project, up, limits)
    if down:
        await QUOTAS.release(session, project, down)


async def reserve_key_pair(session: AsyncSession, project: str, limits: Mapping[str, int]) -> None:
    if project:
        await QUOTAS.reserve(session, project, {"key_pairs": 1}, limits)


async def release_key_pair(session: AsyncSession, project: str) -> None:
    if project:
        await QUOTAS.release(session, project, {"key_pairs": 1})


def _value(resource: str, value: Any) -> int:
    """Nova's schema: an integer (or a string of one) from -1 to 2**31 - 1."""
    if isinstance(value, str) and INTEGER.match(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 2**31 - 1:
        raise invalid(f"Invalid input for field/attribute {resource}: must be an integer >= -1.")
    return value


async def update(session: AsyncSession, project: str, body: dict[str, Any]) -> None:
    """An admin's new limits (Nova's ``quota_set``). Unknown keys are ignored and the fixed
    ones only checked; a limit below what the project already uses is refused unless the
    body says ``"force": true``, as Nova does."""
    force = body.get("force", False)
    if isinstance(force, str) and force.lower() in ("true", "false", "1", "0"):
        force = force.lower() in ("true", "1")
    if not isinstance(force, bool):
        raise invalid("Invalid input for field/attribute force: expected a boolean.")
    wanted = {k: _value(k, v) for k, v in body.items() if k in RESOURCES or k in EXTRA}
    limits = {k: v for k, v in wanted.items() if k in RESOURCES}
    if not force:
        used = await QUOTAS.usage(session, project)
        for resource, value in limits.items():
            if value != -1 and value < used[resource]:
                raise invalid(
                    f"Quota limit {value} for {resource} must be greater than or equal to "
                    f"already used and reserved {used[resource]}."
                )
    await QUOTAS.set_limits(session, project, limits)


async def quota_set(
    session: AsyncSession, settings: ComputeSettings, project: str, *, detail: bool = False
) -> dict[str, Any]:
    """Nova's ``quota_set``: each limit, or with ``detail`` ``{limit, in_use, reserved}``."""
    hard = await QUOTAS.limits(session, project, defaults(settings)) | EXTRA
    out: dict[str, Any] = {"id": project}
    if not detail:
        return out | hard
    used = await QUOTAS.usage(session, project)
    for resource, limit in hard.items():
        out[resource] = {"limit": limit, "in_use": used.get(resource, 0), "reserved": 0}
    return out


def default_set(settings: ComputeSettings, project: str) -> dict[str, Any]:
    return {"id": project} | defaults(settings) | EXTRA
