"""Interface attachments (Nova's os-interface): a port on a running (or stopped) server.

attach: make the port on the network (with the server's security groups) or claim the
        one given (its device id), record it, bind it on the server's host (ACTIVE), have
        the agent hot-plug its NIC, then mark it ``bound``
detach: mark it detaching (the request answers 202), then in the background have the
        agent unplug the NIC (the guest asked again while it holds it), delete the port
        made or give back the one given (no device, no binding), forget it; a guest that
        kept the NIC: attached again, the fault on the instance action (``detaching``)

A NIC is shown (os-interface, addresses) and sent to the agent (spawn, reconcile) only
while ``bound``, so one half-way through an attach or a detach never is. A failed attach
is undone in reverse; what cannot be undone now (the host or the network service away)
stays recorded as ``detaching``, for a DELETE of the port or the server's delete to
finish.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, use_context
from common_rpc.contracts.network import Port
from common_rpc.contracts.payloads import ServerInterfacePayload
from common_rpc.errors import (
    InternalError,
    NotFound,
    RpcError,
    RpcTimeout,
    ServiceUnavailable,
)
from common_rpc.outbox import add_event

from ..db.models import Server, ServerPort
from ..wiring import Deps
from . import actions, detaching, servers, tasks
from .actions import ATTACH_INTERFACE, DETACH_INTERFACE
from .boot import OWNER, BootFailed, bind_port, give_back, nic_of, port_request
from .common import transaction, try_insert
from .desired import nic_wire
from .errors import conflict, invalid, not_found
from .networks import check_interface

log = logging.getLogger(__name__)

ATTACHABLE = ("ACTIVE", "SHUTOFF")
Nics = list[dict[str, Any]]


def _uuid(value: Any, key: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise invalid(
            f"Invalid input for field/attribute {key}: {value!r} is not a UUID."
        ) from None


def requested(spec: dict[str, Any]) -> dict[str, Any]:
    """``{"port_id"}`` or ``{"network_id", "fixed_ip"?}`` from an ``interfaceAttachment``
    (Nova's schema: one of ``port_id``/``net_id``, ``fixed_ips`` of at most one entry
    and only with ``net_id``; ``tag`` is accepted and not kept)."""
    unknown = set(spec) - {"port_id", "net_id", "fixed_ips", "tag"}
    if unknown:
        raise invalid(f"Additional properties are not allowed ({', '.join(sorted(unknown))}).")
    port_id, net_id, fixed = spec.get("port_id"), spec.get("net_id"), spec.get("fixed_ips")
    if port_id and net_id:
        raise invalid("Must not input both network_id and port_id")
    if port_id:
        if fixed:
            raise invalid("Invalid input: fixed_ips can only be given with net_id.")
        return {"port_id": _uuid(port_id, "port_id")}
    if not net_id:
        raise invalid("Invalid input: interfaceAttachment needs a net_id or a port_id.")
    wanted: dict[str, Any] = {"network_id": _uuid(net_id, "net_id")}
    if fixed is not None:
        if (
            not isinstance(fixed, list)
            or len(fixed) > 1
            or not all(isinstance(f, dict) and isinstance(f.get("ip_address"), str) for f in fixed)
        ):
            raise invalid("Invalid input for field/attribute fixed_ips.")
        if fixed:
            wanted["fixed_ip"] = fixed[0]["ip_address"]
    return wanted


def check_state(server: Server, action: str) -> None:
    """Nova's rule: only an ACTIVE or SHUTOFF server with no task running (409 otherwise)."""
    if server.status not in ATTACHABLE or not server.host or server.task_state:
        raise servers.conflict_state(server, action)


async def hold_port(session: AsyncSession, server: Server, port_id: str) -> None:
    """One server at a time holds a given port (the ``server_ports`` key): 409 if taken."""
    if not await try_insert(session, ServerPort(port_id=port_id, server_id=server.id)):
        raise conflict(f"Port {port_id} is still in use.")


def view(port: Port) -> dict[str, Any]:
    """Nova's ``interfaceAttachment`` of a port as the network service shows it."""
    return {
        "port_id": port.id,
        "net_id": port.network_id,
        "mac_addr": port.mac_address,
        "port_state": port.status,
        "fixed_ips": [
            {"subnet_id": ip.subnet_id, "ip_address": ip.ip_address} for ip in port.fixed_ips
        ],
    }


def _recorded_view(nic: dict[str, Any]) -> dict[str, Any]:
    """The attachment from the server's record alone (the network service did not answer)."""
    return {
        "port_id": nic["port_id"],
        "net_id": nic["network_id"],
        "mac_addr": nic.get("mac"),
        "port_state": "ACTIVE",
        "fixed_ips": [{"subnet_id": None, "ip_address": ip} for ip in nic.get("ips", [])],
    }


def attached(server: Server, port_id: str | None = None) -> Nics:
    return [
        n
        for n in server.nics or []
        if n.get("bound") and (port_id is None or n["port_id"] == port_id)
    ]


async def shown(
    deps: Deps, ctx: RequestContext, server_id: str, port_id: str | None = None
) -> list[dict[str, Any]]:
    """The server's attached ports (or the one named), as the server's project sees them
    at the network service now; 404 when the caller cannot see the server."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        server = await servers.get(session, ctx, server_id)
        nics = attached(server, port_id)
    with use_context(tasks.server_context(server)):
        found = await views(deps, nics)
    if port_id is not None and not found:
        raise NotFound(f"Port {port_id} is not attached to server {server_id}.")
    return found


async def views(deps: Deps, nics: Nics) -> list[dict[str, Any]]:
    """Each attached port as the network service has it now; a port gone there is left out."""
    out = []
    for nic in nics:
        try:
            out.append(view(await deps.network.get_port(nic["port_id"])))
        except NotFound:
            continue
    return out


# ---------------------------------------------------------------- attach


async def attach_to(
    deps: Deps, ctx: RequestContext, server_id: str, wanted: dict[str, Any]
) -> dict[str, Any]:
    """``POST os-interface``. Nova's order: the server (404), its state (409), then the
    network (404, 403), all before anything is held or recorded; then the given port held,
    the action recorded and the attach run as the server's project."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        found = await servers.get(session, ctx, server_id)
        check_state(found, "attach_interface")
    await check_interface(deps, wanted)
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        check_state(server, "attach_interface")
        if "port_id" in wanted:
            await hold_port(session, server, wanted["port_id"])
        await actions.record(session, server, ATTACH_INTERFACE)
        session.expunge(server)
    with use_context(tasks.server_context(server)):
        return await attach(deps, server, wanted)


async def attach(deps: Deps, server: Server, wanted: dict[str, Any]) -> dict[str, Any]:
    """Make or claim the port, bind it, hot-plug it; the attachment, or everything undone
    and the error raised. A given port must already be held (``hold_port``)."""
    assert server.host is not None
    nic: dict[str, Any] | None = None
    taken = plugging = False
    try:
        if "port_id" in wanted:
            port = await deps.network.get_port(wanted["port_id"])
            if port.device_id:
                raise conflict(f"Port {port.id} is still in use.")
            nic = nic_of(port, created=False) | {"claimed": True}
            await _record(deps, server.id, lambda nics: [*nics, nic])
            taken = True
            await deps.network.update_port(port.id, device_id=server.id, device_owner=OWNER)
        else:
            port = await _make_port(deps, server, wanted)
            nic = nic_of(port, created=True)
            taken = True
            await _record(deps, server.id, lambda nics: [*nics, nic])
        await _emit(deps, server, nic, "interface_attach", "start")
        nic |= await bind_port(deps, nic, server.host)
        plugging = True
        try:
            await deps.agent(server.host).attach_interface(server.id, nic_wire(nic))
        except RpcError as exc:
            raise _host_failed(server.id, exc) from None
        nic["bound"] = True
        await _record(deps, server.id, lambda nics: _replaced(nics, nic))
    except Exception as exc:
        log.warning("attach of a port to %s failed: %r", server.id, exc)
        if nic is not None:
            await _undo_attach(deps, server, nic, taken=taken, plugged=plugging)
        elif "port_id" in wanted:
            await _forget(deps, server.id, wanted["port_id"])
        if isinstance(exc, BootFailed):
            exc = InternalError(_attach_failed(server.id, str(exc)))
        await _attached(deps, server, str(getattr(exc, "message", None) or exc))
        raise exc from None
    await _emit(deps, server, nic, "interface_attach", "end")
    await _attached(deps, server)
    try:
        return view(await deps.network.get_port(nic["port_id"]))
    except RpcError:
        return _recorded_view(nic)


async def _make_port(deps: Deps, server: Server, wanted: dict[str, Any]) -> Port:
    """A port on the network, as a boot makes one (device, owner, the server's groups)."""
    try:
        await deps.network.get_network(wanted["network_id"])
    except NotFound:
        raise not_found("Network", wanted["network_id"]) from None
    request = port_request(server, wanted["network_id"], wanted.get("fixed_ip"))
    return await deps.network.create_port(request, op_id=f"{server.id}.port.{uuid.uuid4()}")


async def _attached(deps: Deps, server: Server, fault: str | None = None) -> None:
    """The attach's instance action event ends (recorded by the request)."""
    async with transaction(deps.runtime.sessions) as session:
        await actions.finish(session, server.id, ATTACH_INTERFACE, fault=fault)


def _attach_failed(server_id: str, reason: str) -> str:
    return f"Failed to attach network adapter device to {server_id}: {reason}"


def _host_failed(server_id: str, exc: RpcError) -> RpcError:
    """A host that did not answer stays a 503/504; one that refused is Nova's 500."""
    if isinstance(exc, RpcTimeout | ServiceUnavailable):
        return exc
    return InternalError(_attach_failed(server_id, exc.message))


async def _undo_attach(
    deps: Deps, server: Server, nic: dict[str, Any], *, taken: bool, plugged: bool
) -> None:
    """Unplug, then delete or give back the port, then forget it. What cannot be undone
    now stays recorded as ``detaching`` (a DELETE of the port or the server's delete
    finishes it), with the port still held."""
    try:
        if plugged:
            assert server.host is not None
            unplug = detaching.once(deps)
            await deps.agent(server.host).detach_interface(server.id, nic_wire(nic), unplug)
        if taken:
            await _release(deps, nic)
    except RpcError as exc:
        log.warning("undoing the attach of %s to %s failed: %s", nic["port_id"], server.id, exc)
        leftover = nic | {"bound": False, "detaching": True}
        await _record(deps, server.id, lambda nics: _replaced(nics, leftover), strict=False)
        return
    await _forget(deps, server.id, nic["port_id"])


async def _release(deps: Deps, nic: dict[str, Any]) -> None:
    if nic.get("created"):
        await deps.network.delete_port(nic["port_id"])
    else:
        await give_back(deps, nic["port_id"])


# ---------------------------------------------------------------- detach (202, then a task)


async def detach(deps: Deps, ctx: RequestContext, server_id: str, port_id: str) -> None:
    """``DELETE os-interface/<port>``: the NIC marked detaching before the caller's
    answer, the host's unplug after it."""
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        check_state(server, "detach_interface")
        job, nic = await request_detach(session, deps, server, port_id)
        session.expunge(server)
    start_detach(deps, server, nic, job)


async def request_detach(
    session: AsyncSession, deps: Deps, server: Server, port_id: str
) -> tuple[detaching.Job, dict[str, Any]]:
    """In the request's transaction, under the server's row lock: the NIC is marked
    detaching (no longer shown nor sent to the agent), the action and its event recorded.
    404 when the port is not attached, 409 while a detach of it runs."""
    row = await _locked(session, server.id)
    if row is None:
        raise not_found("Server", server.id)
    nics = [dict(n) for n in row.nics or []]
    found = [n for n in nics if n["port_id"] == port_id and (n.get("bound") or n.get("detaching"))]
    if not found:
        raise NotFound(f"Port {port_id} is not attached to server {server.id}.")
    nic = found[0]
    if nic.get("detach_event"):
        raise conflict(f"Port {port_id} of server {server.id} is being detached.")
    job = await detaching.begin(session, deps, server, DETACH_INTERFACE, port_id)
    # Given at boot or at an attach: given back however it ends.
    nic |= {
        "bound": False,
        "detaching": True,
        "claimed": not nic.get("created"),
        "was_bound": bool(nic.get("bound")),
        "detach_event": job.event_id,
    }
    row.nics = nics
    await _add_event(session, server, nic, "interface_detach", "start")
    return job, dict(nic)


def start_detach(deps: Deps, server: Server, nic: dict[str, Any], job: detaching.Job) -> None:
    detaching.start(deps, server, job, run_detach(deps, server, nic, job))


async def run_detach(deps: Deps, server: Server, nic: dict[str, Any], job: detaching.Job) -> None:
    """The host unplugs the NIC, asking the guest again while it holds it; then the port
    is deleted or given back, or, when the guest kept the NIC, it stays attached."""
    assert server.host is not None
    try:
        if "bridge" in nic:  # else never bound: nothing was plugged
            unplug = detaching.unplug(deps)
            await deps.agent(server.host).detach_interface(server.id, nic_wire(nic), unplug)
    except RpcError as exc:
        log.warning("detach of %s from %s failed: %s", nic["port_id"], server.id, exc.message)
        await roll_back(deps, server, job, _detach_failed(server.id, exc))
        return
    if await detaching.advance(deps, job):
        await release(deps, server, job)


def _detach_failed(server_id: str, exc: RpcError) -> str:
    """Nova's ``InterfaceDetachFailed``, with the host's reason."""
    if isinstance(exc, RpcTimeout | ServiceUnavailable):
        return f"Failed to detach network adapter device from {server_id}: the host did not answer."
    return f"Failed to detach network adapter device from {server_id}: {exc.message}"


async def roll_back(deps: Deps, server: Server, job: detaching.Job, fault: str) -> None:
    """The guest kept the NIC: attached (shown, plugged by reconcile) again, the fault on
    the action, ``compute.server.interface_detach.error``."""
    async with transaction(deps.runtime.sessions) as session:
        if not await detaching.end(session, job, fault):
            return
        row = await _locked(session, server.id)
        if row is None:
            return
        nics = [dict(n) for n in row.nics or []]
        for nic in nics:
            if nic["port_id"] == job.target and nic.get("detach_event") == job.event_id:
                was_bound = bool(nic.pop("was_bound", True))
                nic.pop("detach_event", None)
                nic |= {"bound": was_bound, "detaching": not was_bound}
                port = {"port_id": nic["port_id"], "network_id": nic.get("network_id")}
                await detaching.emit_failed(session, server, "interface_detach", fault, **port)
        row.nics = nics


async def release(deps: Deps, server: Server, job: detaching.Job) -> None:
    """The guest let the NIC go: the port made is deleted, a given one given back, and
    the server forgets it. The network service away: the event stays ``releasing`` and
    the sweeper finishes it."""
    if not await detaching.holds(deps, job):
        return
    current = await tasks.load(deps, server.id)
    nic = next(
        (n for n in (current.nics if current else []) or [] if n["port_id"] == job.target), None
    )
    if nic is not None:
        try:
            await _release(deps, nic)
        except RpcError as exc:
            log.warning("port %s of %s not released: %s", job.target, server.id, exc.message)
            return
    async with transaction(deps.runtime.sessions) as session:
        if not await detaching.end(session, job):
            return
        await _forget_in(session, server.id, job.target)
        if nic is not None:
            await _add_event(session, server, nic, "interface_detach", "end")


# ---------------------------------------------------------------- the server's record


async def _locked(session: AsyncSession, server_id: str) -> Server | None:
    query = (
        select(Server)
        .where(Server.id == server_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).first()


async def _record(
    deps: Deps, server_id: str, change: Callable[[Nics], Nics], *, strict: bool = True
) -> None:
    """Rewrite the server's NICs under its row lock. ``strict``: refused (409) once the
    server is being deleted, since its delete may already have read them."""
    async with transaction(deps.runtime.sessions) as session:
        row = await _locked(session, server_id)
        if strict and (row is None or row.status == "DELETING"):
            raise conflict(f"Server {server_id} is being deleted.")
        if row is not None:
            row.nics = change([dict(n) for n in row.nics or []])


def _replaced(nics: Nics, nic: dict[str, Any]) -> Nics:
    return [dict(nic) if n["port_id"] == nic["port_id"] else n for n in nics]


async def _forget(deps: Deps, server_id: str, port_id: str) -> None:
    """The port is no longer the server's: its record and its hold go."""
    async with transaction(deps.runtime.sessions) as session:
        await _forget_in(session, server_id, port_id)


async def _forget_in(session: AsyncSession, server_id: str, port_id: str) -> None:
    row = await _locked(session, server_id)
    if row is not None:
        row.nics = [dict(n) for n in row.nics or [] if n["port_id"] != port_id]
    await session.execute(
        sql_delete(ServerPort).where(
            ServerPort.port_id == port_id, ServerPort.server_id == server_id
        )
    )


# ---------------------------------------------------------------- events


async def _emit(deps: Deps, server: Server, nic: dict[str, Any], action: str, phase: str) -> None:
    async with transaction(deps.runtime.sessions) as session:
        await _add_event(session, server, nic, action, phase)


async def _add_event(
    session: AsyncSession, server: Server, nic: dict[str, Any], action: str, phase: str
) -> None:
    payload = ServerInterfacePayload(
        **servers.payload(server).model_dump(),
        port_id=nic["port_id"],
        network_id=nic.get("network_id"),
    )
    await add_event(
        session,
        servers.EVENT.format(action=action, phase=phase),
        payload,
        project_id=server.project_id,
    )
