"""RPC methods on the ``compute`` topic (any compute-api replica answers).

The compute-agent of each host calls:
    host_servers(host) -> [{"server_id", "generation", "power_state", "nics"}]
        the servers whose guest should exist on ``host``, the power state wanted
        ("running" or "shutdown") and the NICs it has (``{"port_id", "mac", "bridge",
        "mtu"}``, hot-plugged ones too); anything else of ours on the host is an orphan.
    power_state_changed(server_id, power_state) -> {"server_id", "status"}
        what the hypervisor saw ("running", "shutdown", "paused", "crashed", "nostate");
        a guest that shut itself down makes the server SHUTOFF.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from common_rpc import RpcError, RpcRouter
from common_rpc.audit import require_admin
from common_rpc.context import current_context
from common_rpc.errors import Forbidden

from ..db.models import Server
from ..domain import audit as audit_domain
from ..domain import servers
from ..domain.common import transaction
from ..domain.desired import attached_nics, nic_wire
from ..domain.tasks import power_code
from ..wiring import Deps

rpc = RpcRouter()

ON_HOST = ("BUILD", "ACTIVE", "SHUTOFF", "REBOOT", "HARD_REBOOT")
RUNNING = 1


def _agents_only() -> None:
    if not current_context().is_admin:
        raise Forbidden("this method is for the compute service's own agents")


@rpc.handler()
async def check_peers(deps: Deps) -> dict[str, Any]:
    """Whether the services compute depends on answer, and which replica did."""
    results: dict[str, Any] = {}
    for topic in (deps.network.topic, deps.volume.topic):
        try:
            pong = await deps.runtime.rpc.call(topic, "ping", timeout=deps.settings.rpc_timeout_s)
            results[topic] = {"ok": True, **pong}
        except RpcError as exc:
            results[topic] = {"ok": False, "error": exc.code, "message": exc.message}
    return results


@rpc.handler()
async def audit(deps: Deps) -> dict[str, Any]:
    """``stackling audit compute``: host and database compared (operators only)."""
    require_admin()
    return (await audit_domain.audit(deps)).to_wire()


def _wanted_power(server: Server) -> str | None:
    """The power state the host should show; None while a boot or a command is under way
    (the agent then reports nothing for it: what it sees is about to change, and a report
    read before a boot started its domain would land after the boot made it ACTIVE)."""
    if server.status == "BUILD" or server.task_state is not None:
        return None
    return "shutdown" if server.status == "SHUTOFF" else "running"


@rpc.handler()
async def host_servers(deps: Deps, host: str) -> list[dict[str, Any]]:
    _agents_only()
    async with transaction(deps.runtime.sessions) as session:
        rows = await session.scalars(
            select(Server).where(Server.host == host, Server.status.in_(ON_HOST))
        )
        return [
            {
                "server_id": r.id,
                "generation": r.generation,
                "power_state": _wanted_power(r),
                "nics": [nic_wire(n) for n in attached_nics(r)],
            }
            for r in rows
        ]


@rpc.handler()
async def power_state_changed(deps: Deps, server_id: str, power_state: str | int) -> dict[str, Any]:
    _agents_only()
    code = power_code(power_state)
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is None:
            return {"server_id": server_id, "status": None}
        if server.status == "ACTIVE" and server.task_state is None and code != RUNNING:
            await servers.move(
                session,
                server_id,
                expected=("ACTIVE",),
                when_task=None,
                status="SHUTOFF",
                vm_state="stopped",
                power_state=code,
            )
        elif server.status in ("ACTIVE", "SHUTOFF"):
            server.power_state = code
        await session.refresh(server)
        return {"server_id": server_id, "status": server.status}
