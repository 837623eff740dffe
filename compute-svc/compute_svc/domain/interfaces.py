"""Interface attachments (Nova's os-interface): a port on a running (or stopped) server.

attach: make the port on the network (with the server's security groups) or claim the
        one given (its device id), record it, bind it on the server's host (ACTIVE), have
        the agent hot-plug its NIC, then mark it ``bound``
detach: mark it detaching, have the agent unplug the NIC, delete the port made or give
        back the one given (no device, no binding), forget it

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
from . import servers
from .boot import BootFailed, bind_port, give_back, nic_of
from .common import transaction, try_insert
from .desired import nic_wire
from .errors import conflict, invalid, not_found

log = logging.getLogger(__name__)

ATTACHABLE = ("ACTIVE", "SHUTOFF")
OWNER = "compute:nova"
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


def view(port: dict[str, Any]) -> dict[str, Any]:
    """Nova's ``interfaceAttachment`` of a port as the network service shows it."""
    return {
        "port_id": port["id"],
        "net_id": port["network_id"],
        "mac_addr": port.get("mac_address"),
        "port_state": port.get("status"),
        "fixed_ips": [
            {"subnet_id": ip.get("subnet_id"), "ip_address": ip["ip_address"]}
            for ip in port.get("fixed_ips") or []
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


async def attach(deps: Deps, server: Server, wanted: dict[str, Any]) -> dict[str, Any]:
    """Make or claim the port, bind it, hot-plug it; the attachment, or everything undone
    and the error raised. A given port must already be held (``hold_port``)."""
    assert server.host is not None
    nic: dict[str, Any] | None = None
    taken = plugging = False
    try:
        if "port_id" in wanted:
            port = await deps.network.get_port(wanted["port_id"])
            if port.get("device_id"):
                raise conflict(f"Port {port['id']} is still in use.")
            nic = nic_of(port, created=False) | {"claimed": True}
            await _record(deps, server.id, lambda nics: [*nics, nic])
            taken = True
            await deps.network.update_port(port["id"], device_id=server.id, device_owner=OWNER)
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
            raise InternalError(_attach_failed(server.id, str(exc))) from None
        raise
    await _emit(deps, server, nic, "interface_attach", "end")
    try:
        return view(await deps.network.get_port(nic["port_id"]))
    except RpcError:
        return _recorded_view(nic)


async def _make_port(deps: Deps, server: Server, wanted: dict[str, Any]) -> dict[str, Any]:
    """A port on the network, as a boot makes one (device, owner, the server's groups)."""
    try:
        await deps.network.get_network(wanted["network_id"])
    except NotFound:
        raise not_found("Network", wanted["network_id"]) from None
    args: dict[str, Any] = {
        "network_id": wanted["network_id"],
        "device_id": server.id,
        "device_owner": OWNER,
    }
    if wanted.get("fixed_ip"):
        args["fixed_ips"] = [{"ip_address": wanted["fixed_ip"]}]
    if server.security_groups is not None:
        args["security_groups"] = [g["id"] for g in server.security_groups]
    return await deps.network.create_port(op_id=f"{server.id}.port.{uuid.uuid4()}", **args)


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
            await deps.agent(server.host).detach_interface(server.id, nic_wire(nic))
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


# ---------------------------------------------------------------- detach


async def detach(deps: Deps, server: Server, port_id: str) -> None:
    """Unplug the port's NIC, delete or give back the port; 404 if it is not attached.

    A host that cannot unplug it now leaves it attached (409, try again); a port the
    network service cannot release now stays recorded as ``detaching`` (the error is
    answered; a repeated DELETE or the server's delete finishes it).
    """
    assert server.host is not None
    nic, was_bound = await _begin_detach(deps, server, port_id)
    try:
        if "bridge" in nic:  # else never bound: nothing was plugged
            await deps.agent(server.host).detach_interface(server.id, nic_wire(nic))
    except RpcError as exc:
        again = nic | {"bound": was_bound, "detaching": not was_bound}
        await _record(deps, server.id, lambda nics: _replaced(nics, again), strict=False)
        if isinstance(exc, RpcTimeout | ServiceUnavailable):
            raise
        raise conflict(f"Port {port_id} could not be detached now; try again: {exc}") from None
    await _release(deps, nic)
    await _forget(deps, server.id, port_id)
    await _emit(deps, server, nic, "interface_detach", "end")


async def _begin_detach(deps: Deps, server: Server, port_id: str) -> tuple[dict[str, Any], bool]:
    """Mark the NIC detaching (no longer shown nor sent to the agent), in one transaction
    with the check that it is attached, so two DELETEs do not both go on. The NIC, and
    whether it was shown as attached."""
    async with transaction(deps.runtime.sessions) as session:
        row = await _locked(session, server.id)
        if row is None:
            raise not_found("Server", server.id)
        nics = [dict(n) for n in row.nics or []]
        found = [
            n for n in nics if n["port_id"] == port_id and (n.get("bound") or n.get("detaching"))
        ]
        if not found:
            raise NotFound(f"Port {port_id} is not attached to server {server.id}.")
        nic = found[0]
        was_bound = bool(nic.get("bound"))
        # Given at boot or at an attach: given back however it ends.
        nic |= {"bound": False, "detaching": True, "claimed": not nic.get("created")}
        row.nics = nics
        await _add_event(session, server, nic, "interface_detach", "start")
        return dict(nic), was_bound


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
