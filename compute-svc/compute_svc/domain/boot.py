"""Booting a server: schedule and claim, ports made and bound, the agent's spawn.

A failure at any step releases everything taken (agent destroy, the ports made, the
claim) and leaves the server in ERROR with a fault; a boot that finds its server moved
on (deleted, or swept past its deadline) releases what it took and stops.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common_rpc.context import RequestContext, use_context
from common_rpc.contracts.network import CreatePort, FixedIpRequest, Port
from common_rpc.errors import Forbidden, NotFound, RpcError, RpcTimeout

from ..contracts import ServerState, Spawned
from ..db.models import Claim, Server, utcnow
from ..wiring import Deps
from . import (
    actions,
    hypervisors,
    networks,
    placement,
    quotas,
    scheduler,
    security_groups,
    server_groups,
    servers,
)
from .common import transaction
from .desired import server_state
from .errors import bad_field, invalid
from .tasks import (
    BUILDING,
    Aborted,
    BootFailed,
    Superseded,
    fault,
    load,
    lost,
    power_code,
    progress,
    server_context,
)

log = logging.getLogger(__name__)

# The device owner of a server's ports (Nova's).
OWNER = "compute:nova"


@dataclass(frozen=True)
class Created:
    server: Server
    admin_pass: str
    # The groups as the request named them (Nova echoes them; the ports are not made yet).
    security_groups: list[str]


async def check_zone(deps: Deps, ctx: RequestContext, requested: Any) -> str | None:
    """The create's ``availability_zone``: a zone some compute host is in, or
    ``zone:host`` (admins only, Nova's forced host); None when none was asked."""
    if requested is None:
        return None
    if not isinstance(requested, str):
        raise bad_field("availability_zone", requested, f"{requested!r} is not of type 'string'")
    zone, host = placement.split(requested)
    if host is not None and not ctx.is_admin:
        raise Forbidden(
            "Policy doesn't allow os_compute_api:servers:create:forced_host to be performed."
        )
    agents = await hypervisors.compute_agents(deps)
    default = deps.settings.default_availability_zone
    zones = {scheduler.zone_of(a, default) for a in agents}
    if zone is not None and zone not in zones:
        raise invalid("The requested availability zone is not available")
    if host is not None and host not in {a.host for a in agents}:
        raise invalid(f"No valid host was found. Compute host {host} could not be found.")
    return requested


async def create(
    deps: Deps, ctx: RequestContext, spec: dict[str, Any], hints: Any = None
) -> Created:
    """``POST /servers``: checked (Nova's schema first: nothing is looked up for a bad
    body; then the networks, ports and groups, as the caller), the row and its action
    recorded, the boot started; it runs after the caller has its answer. ``hints``:
    the body's ``os:scheduler_hints`` (``group``: the server group it joins)."""
    servers.check_create(spec)
    if hints is not None and not isinstance(hints, dict):
        raise bad_field("os:scheduler_hints", hints, f"{hints!r} is not of type 'object'")
    group = (hints or {}).get("group")
    zone = await check_zone(deps, ctx, spec.get("availability_zone"))
    wanted = security_groups.requested(spec.get("security_groups"))
    await networks.check_requested(deps, spec)
    groups = None
    if wanted is not None:
        # Found now, as the caller: an unknown group is a 400 and nothing is made.
        project_id = ctx.project_id or ""
        found = await security_groups.find(deps, wanted, project_id=project_id, status=400)
        groups = security_groups.brief(found)
    _, count = servers.counts(spec)
    if count > 1 and any(
        isinstance(n, dict) and (n.get("port") or n.get("fixed_ip"))
        for n in spec.get("networks") or []
    ):
        raise invalid("Unable to launch multiple instances with a single configured port ID.")
    made: list[tuple[Server, str]] = []
    async with transaction(deps.runtime.sessions) as session:
        # max_count servers at once, all or none (their quota in this one transaction);
        # named <name>-<n> as Nova's multi_instance_display_name_template.
        for n in range(1, count + 1):
            one = spec if count == 1 else {**spec, "name": f"{spec['name']}-{n}"}
            server, admin_pass = await servers.create(
                session,
                ctx,
                one,
                owner=deps.instance,
                build_timeout_s=deps.settings.build_timeout_s,
                quota_defaults=quotas.defaults(deps.settings),
                security_groups=groups,
            )
            server.availability_zone = zone
            if group is not None:
                await server_groups.join(session, server, group)
            await actions.record(session, server, actions.CREATE)
            made.append((server, admin_pass))
    for server, _ in made:
        start_boot(deps, server)
    first, admin_pass = made[0]
    return Created(first, admin_pass, wanted or ["default"])


def start_boot(deps: Deps, server: Server) -> None:
    with use_context(server_context(server)):
        deps.tasks.start(server.id, boot(deps, server.id))


async def boot(deps: Deps, server_id: str) -> None:
    """Schedule and claim, make and bind ports, spawn; ACTIVE, or ERROR with a fault."""
    spawned_on: str | None = None  # the host told to spawn: it must be told to destroy
    try:
        host = await _schedule(deps, server_id)
        await _plug(deps, server_id, host)
        async with transaction(deps.runtime.sessions) as session:
            server = await session.get(Server, server_id)
            if server is None or server.status != "BUILD":
                raise Aborted(server_id)
            try:
                desired = await server_state(session, deps.images, server)
            except RpcError as exc:
                raise BootFailed(exc.message, 400) from None
            deadline = server.task_deadline
        await progress(deps, server_id, "spawning")
        spawned_on = host
        reply = await _spawn(deps, host, desired, deadline)
        await _activate(deps, server_id, reply)
    except Superseded:
        log.warning("boot of %s taken over by another replica; this one stops", server_id)
    except Aborted:
        await _compensate(deps, server_id, spawned_on, None)
    except BootFailed as exc:
        await _compensate(deps, server_id, spawned_on, fault(str(exc), exc.code))
    except RpcTimeout as exc:
        await _compensate(deps, server_id, spawned_on, fault(f"Build timed out: {exc.message}"))
    except RpcError as exc:
        await _compensate(deps, server_id, spawned_on, fault(exc.message, exc.http_status))
    except Exception as exc:
        log.exception("boot of %s failed", server_id)
        await _compensate(deps, server_id, spawned_on, fault(f"Build failed: {type(exc).__name__}"))


async def _spawn(deps: Deps, host: str, desired: ServerState, deadline: datetime | None) -> Spawned:
    """The agent's spawn, sent again each ``rpc_timeout_s`` until the spawn timeout or the
    build deadline, whichever comes first. A spawn is idempotent (a second one answers the
    domain the first made), so a reply lost to a broker restart costs one attempt, not
    the whole spawn timeout."""
    loop = asyncio.get_running_loop()
    budget = deps.settings.spawn_timeout_s
    if deadline is not None:
        budget = min(budget, (deadline - datetime.now(UTC)).total_seconds())
    end = loop.time() + max(budget, 1.0)
    while True:
        attempt = min(end - loop.time(), deps.settings.rpc_timeout_s)
        try:
            return await deps.agent(host).spawn(desired, timeout=max(attempt, 1.0))
        except RpcTimeout:
            if end - loop.time() < 1.0:
                raise
            log.warning("spawn of %s on %s: no reply yet, asking again", desired.server_id, host)


async def _schedule(deps: Deps, server_id: str) -> str:
    hosts = await placement.candidates(deps)
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is None or server.status != "BUILD":
            raise Aborted(server_id)
        if server.task_owner != deps.instance:
            raise Superseded(server_id)
        held = await session.get(Claim, server_id)  # a boot taken over keeps its claim
        zone = server.availability_zone
        if held is not None:
            host: str | None = held.host
            zone = next((c.zone for c in hosts if c.host == held.host), zone)
        else:
            need = scheduler.Need(server.vcpus, server.ram_mb, server.disk_gb)
            wanted = placement.Wanted.of_request(server.availability_zone)
            cap = await placement.place(
                session, deps.settings, server_id, need, hosts, wanted, server_id
            )
            host, zone = (cap.host, cap.zone) if cap is not None else (None, zone)
        if host is None:
            raise BootFailed(scheduler.NO_VALID_HOST)
        moved = await servers.move(session, server_id, expected=BUILDING, host=host,
                                   owner=deps.instance, task_state="networking",
                                   availability_zone=zone)  # fmt: skip
    if not moved:
        raise await lost(deps, server_id)
    return host


async def _record_nics(deps: Deps, server_id: str, nics: list[dict[str, Any]]) -> None:
    """Written whatever the status: whoever releases the server must know every port.

    If the row is already gone (a delete on another replica finished meanwhile), the
    ports made for it are deleted here, since nobody else knows them.
    """
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is not None:
            server.nics = [dict(n) for n in nics]
            return
    for nic in nics:
        if nic.get("created"):
            try:
                await deps.network.delete_port(nic["port_id"])
            except RpcError as exc:
                log.warning("port %s of deleted %s kept: %s", nic["port_id"], server_id, exc)
    raise Aborted(server_id)


async def _record_groups(
    deps: Deps, server_id: str, ids: list[str], known: list[dict[str, str]] | None
) -> None:
    """The groups in force on the server's ports, by name, for its views."""
    groups = await security_groups.in_force(deps, ids, known)
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is not None:  # gone: the next ``_record_nics`` releases the ports
            server.security_groups = groups


def nic_of(port: Port, created: bool) -> dict[str, Any]:
    """The server's record of one port (``Server.nics``), not yet bound."""
    return {
        "port_id": port.id,
        "network_id": port.network_id,
        "network_name": port.network_name or port.network_id,
        "mac": port.mac_address,
        "ips": [ip.ip_address for ip in port.fixed_ips],
        "created": created,
        "bound": False,
    }


def port_request(server: Server, network_id: str, fixed_ip: str | None) -> CreatePort:
    """A port for the server on ``network_id`` (with the address asked for), with the
    server's security groups (none named: the network service's ``default``)."""
    groups = server.security_groups
    return CreatePort(
        network_id=network_id,
        device_id=server.id,
        device_owner=OWNER,
        fixed_ips=[FixedIpRequest(ip_address=fixed_ip)] if fixed_ip else None,
        security_groups=[g["id"] for g in groups] if groups is not None else None,
    )


async def _plug(deps: Deps, server_id: str, host: str) -> None:
    """One port per requested network (or the given port), each bound to ``host``.

    The ports it makes get the server's security groups (none named: the network
    service's default); a given port keeps its own.
    """
    server = await load(deps, server_id)
    if server is None:
        raise Aborted(server_id)
    nics: list[dict[str, Any]] = []
    groups: list[str] = []  # what the ports got, each port's in turn
    for index, wanted in enumerate(server.requested_networks or []):
        if "port_id" in wanted:
            port = await deps.network.get_port(wanted["port_id"])
            if port.device_id not in ("", server_id):
                raise BootFailed(f"Port {port.id} is still in use.", 409)
            nics.append(nic_of(port, created=False))
        else:
            request = port_request(server, wanted["network_id"], wanted.get("fixed_ip"))
            port = await deps.network.create_port(request, op_id=f"{server_id}.port.{index}")
            nics.append(nic_of(port, created=True))
        groups += port.security_groups
        await _record_nics(deps, server_id, nics)
    await _record_groups(deps, server_id, groups, server.security_groups)
    for nic in nics:
        nic |= await bind_port(deps, nic, host) | {"bound": True}
        await _record_nics(deps, server_id, nics)
    await progress(deps, server_id, "block_device_mapping")


async def bind_port(deps: Deps, nic: dict[str, Any], host: str) -> dict[str, Any]:
    """Bind the NIC's port on ``host`` and wait for it to be ACTIVE; what the binding
    says of it (``bridge``, ``mtu``, ``mac``, ``ips``). BootFailed when it cannot be."""
    bound = await deps.network.update_port_binding(nic["port_id"], host)
    error = bound.binding_error
    if error is not None:
        raise BootFailed(f"Port {nic['port_id']} could not be bound on {host}: {error.message}")
    if bound.status != "ACTIVE":
        await _until_active(deps, nic["port_id"])
    return {
        "bridge": bound.bridge,
        "mtu": bound.mtu,
        "mac": bound.mac_address or nic["mac"],
        "ips": [ip.ip_address for ip in bound.fixed_ips] or nic["ips"],
    }


async def _until_active(deps: Deps, port_id: str) -> None:
    """The binding was wired but not yet marked ACTIVE (a concurrent re-bind): wait for it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.settings.rpc_timeout_s
    while (await deps.network.get_port(port_id)).status != "ACTIVE":
        if loop.time() > deadline:
            raise BootFailed(f"Port {port_id} did not become ACTIVE.")
        await asyncio.sleep(0.5)


async def _activate(deps: Deps, server_id: str, reply: Spawned) -> None:
    power = power_code(reply.power_state, 1)
    async with transaction(deps.runtime.sessions) as session:
        moved = await servers.move(
            session,
            server_id,
            expected=BUILDING,
            status="ACTIVE",
            vm_state="active",
            task_state=None,
            power_state=power,
            launched_at=utcnow(),
            owner=deps.instance,
            task_owner=None,
            task_deadline=None,
        )
        if moved:
            server = await session.get(Server, server_id)
            assert server is not None
            await servers.emit(session, server, "create", "end")
            await actions.finish(session, server_id, actions.CREATE)
    if not moved:
        raise await lost(deps, server_id)


async def release(deps: Deps, server: Server, *, destroy: bool) -> tuple[list[Any], bool]:
    """Destroy the guest, delete the ports we made and give back the ones the user gave
    (at boot or at an attach: no device, no binding, as Nova unbinds them), so no host
    keeps wiring a port for a guest that is gone; what could not be released is kept."""
    destroyed = True
    if destroy and server.host:
        try:
            await deps.agent(server.host).destroy(server.id)
        except RpcError as exc:
            log.warning("destroy of %s on %s failed: %s", server.id, server.host, exc.message)
            destroyed = False
    leftover = []
    for nic in server.nics or []:
        try:
            if nic.get("created"):
                await deps.network.delete_port(nic["port_id"])
            else:
                await give_back(deps, nic["port_id"])
        except RpcError as exc:
            log.warning("port %s of %s not released: %s", nic["port_id"], server.id, exc.message)
            leftover.append(nic)
    return leftover, destroyed


async def give_back(deps: Deps, port_id: str) -> None:
    """A port the user gave (a boot or an attach) is theirs again: no device, no binding.
    One that is already gone needs nothing."""
    try:
        await deps.network.update_port(port_id, device_id="", device_owner="", unbind=True)
    except NotFound:
        pass


async def release_strays(deps: Deps, server: Server) -> bool:
    """Delete the ports made for the server that it never recorded; False if not now.

    A ``create_port`` whose reply was lost (network-api slow past the deadline) still
    makes its port, with the server as ``device_id``; only network knows it. Ports the
    user gave keep theirs: this runs only for servers that asked for networks.
    """
    if not any("network_id" in wanted for wanted in server.requested_networks or []):
        return True
    try:
        await deps.network.delete_ports(server.id)
    except RpcError as exc:
        log.warning("stray ports of %s not released: %s", server.id, exc.message)
        return False
    return True


async def _compensate(
    deps: Deps, server_id: str, spawned_on: str | None, failure: dict[str, Any] | None
) -> None:
    server = await load(deps, server_id)
    if server is None:
        # Deleted meanwhile (another replica): a spawn that landed after its destroy
        # would be left running, so this boot destroys what it asked for.
        if spawned_on is not None:
            try:
                await deps.agent(spawned_on).destroy(server_id)
            except RpcError as exc:
                log.warning("destroy of deleted %s failed: %s", server_id, exc.message)
        return
    leftover, destroyed = await release(deps, server, destroy=spawned_on is not None)
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(Server, server_id)
        if row is None:
            return
        row.nics = leftover
        if destroyed:
            await scheduler.release(session, server_id)
            row.host = None
        if failure is not None:
            moved = await servers.move(
                session,
                server_id,
                expected=BUILDING,
                status="ERROR",
                vm_state="error",
                task_state=None,
                power_state=0,
                fault=failure,
                task_owner=None,
                task_deadline=None,
            )
            if moved:
                await session.refresh(row)
                await servers.emit(session, row, "create", "end")
                await actions.finish(session, server_id, actions.CREATE, fault=failure["message"])
    # After the fault is shown; if network is still away, the server's delete tries again.
    await release_strays(deps, server)
