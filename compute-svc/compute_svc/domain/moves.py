"""Moving a server between hosts: evacuation (its host is down) and cold migration.

Both are admin actions and run as background flows after the request's answer, with a
``migrations`` row and a deadline the sweeper watches (ERROR past it):

Each change of the server's status or host is published as ``compute.server.update.end``.

- ``evacuate``: only when the server's host is down (its agent silent past
  ``agent_down_after_s``), as Nova. REBUILD: a host is claimed (not the dead one; the
  server's group and the host an admin named are honoured), the server's ``host`` moves
  there at once (so the dead host's reconcile, when it comes back, removes its copy:
  ``desired.host_state`` no longer lists it), its ports are bound to the new host (their
  fixed IPs stay: network-svc moves the binding and the tunnels), its volumes are
  exported to the new host's initiator, and it is spawned there from its image (the dead
  host's disk is not reachable). A stopped server is stopped again. Then the old claim
  is released and the new one becomes the server's.
- ``migrate``: the server's host must be up (it stops the guest). RESIZE: a host is
  claimed under the migration's id, the guest is stopped on its source (its domain and
  disk kept there for a revert), ports and volumes move, it is spawned on the
  destination (its root disk made again from its image: disks are per host here), then
  VERIFY_RESIZE with the source still claimed. ``confirmResize`` destroys the source's
  copy, releases its claim and makes the destination's the server's; ``revertResize``
  destroys the destination's copy, moves ports and volumes back, starts the source's
  guest again (if it ran) and releases the destination's claim. At every moment a host's
  usage is the sum of its claims: the room on both hosts is held while both copies
  exist, each once.

    await request(deps, ctx, server_id, "evacuate", {"onSharedStorage": False})
    await request(deps, ctx, server_id, "migrate", None)
    await request(deps, ctx, server_id, "confirmResize", None)
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext, use_context
from common_rpc.contracts.volume import Connector
from common_rpc.errors import NotFound, RpcError

from ..db.models import Flavor, Migration, Server, VolumeAttachment, utcnow
from ..wiring import Deps
from . import actions, flavors, placement, quotas, scheduler, servers
from .boot import BootFailed, bind_port
from .common import new_id, transaction
from .desired import server_state
from .errors import bad_field, conflict, forbidden, invalid
from .tasks import fault, load, power_code, server_context
from .volumes import CONNECTOR_KEY, host_connector

log = logging.getLogger(__name__)

EVACUATE, MIGRATE, RESIZE = "evacuate", "migrate", "resize"
CONFIRM, REVERT = "confirmResize", "revertResize"
EVACUATION, MIGRATION = "evacuation", "migration"
# A migration's states: placing and moving, then waiting for a confirm or revert.
ACTIVE_STATES = ("migrating", "finished", "reverting")
# The server statuses of a move under way (the sweeper's, with deadlines).
MOVING = ("REBUILD", "RESIZE", "REVERT_RESIZE")
ACTIONS = (EVACUATE, MIGRATE, RESIZE, CONFIRM, REVERT)


async def request(deps: Deps, ctx: RequestContext, server_id: str, action: str, args: Any) -> Any:
    """The API's entry: the server moved to its transitional status in the request's
    transaction (404, 400, 403, 409 as Nova), the flow started after. What the route
    answers: the evacuation's admin password, else None."""
    if action in (EVACUATE, MIGRATE) and not ctx.is_admin:
        raise forbidden(f"Policy doesn't allow os_compute_api:os-{action}-server to be performed.")
    if action == EVACUATE:
        target, admin_pass = _evacuate_args(args)
        await _check_target(deps, target)
        work = await _begin(deps, ctx, server_id, EVACUATION, target)
        _start(deps, work[0], evacuate(deps, work[0].id, work[1]))
        return {"adminPass": admin_pass}
    if action == MIGRATE:
        target = _migrate_args(args)
        await _check_target(deps, target)
        work = await _begin(deps, ctx, server_id, MIGRATION, target)
        _start(deps, work[0], migrate(deps, work[0].id, work[1]))
        return None
    if action == RESIZE:
        flavor_id = _resize_args(args)
        work = await _begin(deps, ctx, server_id, MIGRATION, None, flavor_id=flavor_id)
        _start(deps, work[0], migrate(deps, work[0].id, work[1]))
        return None
    server, migration = await _begin_finish(deps, ctx, server_id, action)
    flow = confirm if action == CONFIRM else revert
    _start(deps, server, flow(deps, server.id, migration))
    return None


def _start(deps: Deps, server: Server, work: Coroutine[Any, Any, None]) -> None:
    with use_context(server_context(server)):
        deps.tasks.start(server.id, work)


def _evacuate_args(args: Any) -> tuple[str | None, str]:
    """Nova 2.1's evacuate body: ``onSharedStorage`` (required), ``host``, ``adminPass``."""
    if not isinstance(args, dict):
        raise bad_field("evacuate", args, f"{args!r} is not of type 'object'")
    if "onSharedStorage" not in args:
        raise bad_field("evacuate", args, "'onSharedStorage' is a required property")
    shared = args["onSharedStorage"]
    if isinstance(shared, str) and shared.lower() in ("true", "false"):
        shared = shared.lower() == "true"
    if not isinstance(shared, bool):
        raise bad_field("onSharedStorage", shared, f"{shared!r} is not of type 'boolean'")
    if shared:
        # Each host keeps its disks in its own directory: nothing is shared to reuse.
        raise invalid("Invalid state of instance files on shared storage")
    host = args.get("host")
    if host is not None and (not isinstance(host, str) or not host):
        raise bad_field("host", host, f"{host!r} is not of type 'string'")
    admin_pass = args.get("adminPass")
    if admin_pass is not None and not isinstance(admin_pass, str):
        raise bad_field("adminPass", admin_pass, f"{admin_pass!r} is not of type 'string'")
    unknown = set(args) - {"onSharedStorage", "host", "adminPass"}
    if unknown:
        raise bad_field(
            "evacuate", args, f"Additional properties are not allowed ({sorted(unknown)})"
        )
    return host, admin_pass or secrets.token_urlsafe(9)


def _migrate_args(args: Any) -> str | None:
    """``{"migrate": null}``, or 2.56's ``{"migrate": {"host": "cn2"}}``."""
    if args is None:
        return None
    if not isinstance(args, dict):
        raise bad_field("migrate", args, f"{args!r} is not of type 'object', 'null'")
    unknown = set(args) - {"host"}
    if unknown:
        raise bad_field(
            "migrate", args, f"Additional properties are not allowed ({sorted(unknown)})"
        )
    host = args.get("host")
    if host is not None and (not isinstance(host, str) or not host):
        raise bad_field("host", host, f"{host!r} is not of type 'string'")
    return host


def _resize_args(args: Any) -> str:
    """``{"resize": {"flavorRef": "2", "OS-DCF:diskConfig": "AUTO"}}``."""
    if not isinstance(args, dict):
        raise bad_field("resize", args, f"{args!r} is not of type 'object'")
    if "flavorRef" not in args:
        raise bad_field("resize", args, "'flavorRef' is a required property")
    unknown = set(args) - {"flavorRef", "OS-DCF:diskConfig"}
    if unknown:
        raise bad_field(
            "resize", args, f"Additional properties are not allowed ({sorted(unknown)})"
        )
    ref = args["flavorRef"]
    if isinstance(ref, int) and not isinstance(ref, bool):
        ref = str(ref)
    if not isinstance(ref, str) or not ref:
        raise bad_field("flavorRef", ref, f"{ref!r} is not of type 'string', 'integer'")
    if args.get("OS-DCF:diskConfig", "MANUAL") not in ("AUTO", "MANUAL"):
        value = args["OS-DCF:diskConfig"]
        raise bad_field("OS-DCF:diskConfig", value, f"{value!r} is not one of ['AUTO', 'MANUAL']")
    return ref.rsplit("/", 1)[-1]


def _flavor(flavor: Flavor) -> dict[str, Any]:
    return {
        "id": flavor.id,
        "vcpus": flavor.vcpus,
        "ram_mb": flavor.ram_mb,
        "disk_gb": flavor.disk_gb,
    }


async def _new_flavor(
    session: AsyncSession, ctx: RequestContext, server: Server, ref: str
) -> Flavor:
    """The flavor a resize goes to: another one, with no smaller disk (400 as Nova)."""
    try:
        flavor = await flavors.get(session, ctx, ref)
    except NotFound:
        raise invalid(f"Invalid flavorRef provided: {ref}") from None
    if flavor.id == server.flavor_id:
        raise invalid("When resizing, instances must change flavor!")
    if flavor.disk_gb < server.disk_gb:
        raise invalid("Resize error: Unable to resize disk down.")
    return flavor


async def _check_target(deps: Deps, target: str | None) -> None:
    if target is None:
        return
    if target not in {a.host for a in await deps.agents.list(binary=scheduler.BINARY)}:
        raise NotFound(f"Compute host {target} could not be found.")


async def _source_alive(deps: Deps, host: str) -> bool:
    for agent in await deps.agents.list(binary=scheduler.BINARY):
        if agent.host == host:
            return agent.alive
    return False


async def _begin(
    deps: Deps,
    ctx: RequestContext,
    server_id: str,
    kind: str,
    target: str | None,
    flavor_id: str | None = None,
) -> tuple[Server, str]:
    """The server to REBUILD (evacuation) or RESIZE (migration), its migration row and
    action; the migration's id. Refused unless it is settled on a host, and its host is
    down for an evacuation, up for a migration."""
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        action = EVACUATE if kind == EVACUATION else (RESIZE if flavor_id else MIGRATE)
        new_flavor = await _new_flavor(session, ctx, server, flavor_id) if flavor_id else None
        allowed = ("ACTIVE", "SHUTOFF", "ERROR") if kind == EVACUATION else ("ACTIVE", "SHUTOFF")
        if server.status not in allowed or server.task_state is not None or not server.host:
            raise servers.conflict_state(server, action)
        source = server.host
        alive = await _source_alive(deps, source)
        if kind == EVACUATION and alive:
            raise invalid(f"Compute service of {source} is still in use.")
        if kind == MIGRATION and not alive:
            raise conflict(f"Compute service of {source} is unavailable at this time.")
        if target == source:
            raise invalid(f"The target host can't be the same one: {source}.")
        status = "REBUILD" if kind == EVACUATION else "RESIZE"
        task = "rebuilding" if kind == EVACUATION else "resize_prep"
        deadline = datetime.now(UTC) + timedelta(seconds=deps.settings.build_timeout_s)
        old = server.status
        moved = await servers.move(
            session,
            server.id,
            expected=allowed,
            when_task=None,
            status=status,
            task_state=task,
            task_owner=deps.instance,
            task_deadline=deadline,
        )
        if not moved:
            raise servers.conflict_state(server, action)
        migration = Migration(
            id=new_id(),
            server_id=server.id,
            kind=kind,
            source_host=source,
            dest_host=target,
            status="migrating",
            old_status=old,
        )
        if new_flavor is not None:
            migration.old_flavor = {
                "id": server.flavor_id,
                "vcpus": server.vcpus,
                "ram_mb": server.ram_mb,
                "disk_gb": server.disk_gb,
            }
            migration.new_flavor = _flavor(new_flavor)
            # Counted at the new size from the request on (403 over quota, as Nova's
            # upsize check); a revert or a failure gives it back.
            await quotas.resize_server(
                session,
                server.project_id,
                migration.old_flavor,
                migration.new_flavor,
                quotas.defaults(deps.settings),
            )
        session.add(migration)
        await session.refresh(server)
        await servers.emit(session, server, "update", "end")  # its status and task moved
        if new_flavor is not None:
            await servers.emit(session, server, "resize", "start")
        await actions.record(session, server, action)
        session.expunge(server)
    return server, migration.id


async def _begin_finish(
    deps: Deps, ctx: RequestContext, server_id: str, action: str
) -> tuple[Server, str]:
    """confirmResize or revertResize of a server in VERIFY_RESIZE (else 409)."""
    async with transaction(deps.runtime.sessions) as session:
        server = await servers.get(session, ctx, server_id)
        migration = await _active(session, server.id)
        if server.status != "VERIFY_RESIZE" or migration is None or migration.status != "finished":
            raise servers.conflict_state(server, action)
        values: dict[str, Any] = {
            "task_state": "resize_confirming" if action == CONFIRM else "resize_reverting"
        }
        if action == REVERT:
            deadline = datetime.now(UTC) + timedelta(seconds=deps.settings.build_timeout_s)
            values |= {
                "status": "REVERT_RESIZE",
                "task_owner": deps.instance,
                "task_deadline": deadline,
            }
        if not await servers.move(
            session, server.id, expected=("VERIFY_RESIZE",), when_task=None, **values
        ):
            raise servers.conflict_state(server, action)
        if action == REVERT:
            migration.status = "reverting"
        await actions.record(session, server, action)
        session.expunge(server)
    return server, migration.id


async def _active(session: AsyncSession, server_id: str) -> Migration | None:
    return (
        await session.scalars(
            select(Migration)
            .where(Migration.server_id == server_id, Migration.status.in_(ACTIVE_STATES))
            .order_by(Migration.created_at.desc())
        )
    ).first()


class MoveFailed(Exception):
    pass


async def _place(deps: Deps, server_id: str, migration_id: str) -> str:
    """Claim a destination under the migration's id (not the source; the named host if
    any; the server's group); the server's ``host`` moves there for an evacuation."""
    hosts = await placement.candidates(deps)
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        migration = await session.get(Migration, migration_id)
        if server is None or migration is None or server.status not in MOVING:
            raise MoveFailed("The server left its move.")
        size = migration.new_flavor or {
            "vcpus": server.vcpus,
            "ram_mb": server.ram_mb,
            "disk_gb": server.disk_gb,
        }
        need = scheduler.Need(size["vcpus"], size["ram_mb"], size["disk_gb"])
        same_host = migration.new_flavor is not None and deps.settings.allow_resize_to_same_host
        avoid = frozenset() if same_host else frozenset({migration.source_host})
        wanted = placement.Wanted(host=migration.dest_host, avoid=avoid)
        cap = await placement.place(
            session, deps.settings, migration.id, need, hosts, wanted, server.id
        )
        if cap is None:
            raise MoveFailed(scheduler.NO_VALID_HOST)
        migration.dest_host = cap.host
        migration.updated_at = utcnow()
        values: dict[str, Any] = {"availability_zone": cap.zone}
        if migration.kind == EVACUATION:
            values |= {"host": cap.host, "task_state": "rebuild_spawning"}
        else:
            values |= {"task_state": "resize_migrating"}
        if migration.new_flavor is not None:  # the new size is the server's from now on
            values |= _flavor_values(migration.new_flavor)
        await servers.move(session, server.id, expected=MOVING, **values)
        return cap.host


async def _unresize_quota(session: AsyncSession, server_id: str, migration: Migration) -> None:
    """A resize undone: its project's cores and RAM counted at the old size again."""
    server = await session.get(Server, server_id)
    if server is not None and migration.old_flavor and migration.new_flavor:
        await quotas.resize_server(
            session, server.project_id, migration.new_flavor, migration.old_flavor, None
        )


def _flavor_values(flavor: dict[str, Any]) -> dict[str, Any]:
    return {
        "flavor_id": flavor["id"],
        "vcpus": flavor["vcpus"],
        "ram_mb": flavor["ram_mb"],
        "disk_gb": flavor["disk_gb"],
    }


async def _resize_here(deps: Deps, server_id: str, host: str, running: bool) -> int:
    """A resize on the server's own host: the agent keeps the old files for a revert."""
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is None or server.status not in MOVING:
            raise MoveFailed("The server left its move.")
        desired = await server_state(session, deps.images, server)
    reply = await deps.agent(host).resize(desired, running, timeout=deps.settings.spawn_timeout_s)
    return power_code(reply.power_state, 1 if running else 4)


async def move_ports(deps: Deps, server_id: str, host: str) -> None:
    """Bind each of the server's ports to ``host``: same port, same fixed IPs."""
    server = await load(deps, server_id)
    if server is None:
        raise MoveFailed("The server is gone.")
    nics = [dict(n) for n in server.nics or []]
    for nic in nics:
        if nic.get("bound"):
            nic |= await bind_port(deps, nic, host)
    async with transaction(deps.runtime.sessions) as session:
        row = await session.get(Server, server_id)
        if row is not None:
            row.nics = nics


async def move_volumes(deps: Deps, server_id: str, old: str | None, new: str) -> None:
    """Export each attached volume to ``new``'s initiator (the old host's export is let
    go first, best effort: that host may be dead; ``old`` None: whichever host it was,
    for an unshelve)."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        rows = list(
            await session.scalars(
                select(VolumeAttachment).where(
                    VolumeAttachment.server_id == server_id, VolumeAttachment.status == "attached"
                )
            )
        )
        found = [(r.volume_id, dict(r.connection or {})) for r in rows]
    if not found:
        return
    conn = await host_connector(deps, new)
    for volume_id, connection in found:
        kept = connection.get(CONNECTOR_KEY)
        if isinstance(kept, dict) and (old is None or kept.get("host") == old):
            try:
                await deps.volume.terminate_connection(volume_id, Connector.model_validate(kept))
            except RpcError as exc:
                log.warning("export of %s to %s kept: %s", volume_id, old, exc.message)
        info = await deps.volume.initialize_connection(volume_id, conn)
        async with transaction(deps.runtime.sessions) as session:
            row = await session.get(VolumeAttachment, (server_id, volume_id))
            if row is not None:
                row.connection = info.model_dump(mode="json") | {
                    CONNECTOR_KEY: conn.model_dump(mode="json")
                }


async def _spawn_on(deps: Deps, server_id: str, host: str, stopped: bool) -> int:
    """The whole server spawned on ``host`` (stopped again if it was); its power code."""
    async with transaction(deps.runtime.sessions) as session:
        server = await session.get(Server, server_id)
        if server is None or server.status not in MOVING:
            raise MoveFailed("The server left its move.")
        desired = await server_state(session, deps.images, server)
    reply = await deps.agent(host).spawn(desired, timeout=deps.settings.spawn_timeout_s)
    power = power_code(reply.power_state, 1)
    if stopped:
        power = power_code((await deps.agent(host).power(server_id, "stop")).power_state, 4)
    return power


async def _destroy(deps: Deps, host: str | None, server_id: str) -> bool:
    if host is None:
        return True
    try:
        await deps.agent(host).destroy(server_id)
    except RpcError as exc:
        log.warning("destroy of %s on %s failed: %s", server_id, host, exc.message)
        return False
    return True


async def evacuate(deps: Deps, server_id: str, migration_id: str) -> None:
    """Rebuild the server on another host; ACTIVE (or SHUTOFF as it was) there, or
    ERROR with a fault, its claim on the new host given back."""
    dest: str | None = None
    try:
        dest = await _place(deps, server_id, migration_id)
        async with transaction(deps.runtime.sessions, write=False) as session:
            migration = await session.get(Migration, migration_id)
            assert migration is not None
            source, old = migration.source_host, migration.old_status
        await move_ports(deps, server_id, dest)
        await move_volumes(deps, server_id, source, dest)
        power = await _spawn_on(deps, server_id, dest, stopped=old == "SHUTOFF")
    except (MoveFailed, BootFailed, RpcError, AssertionError) as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        await _failed(
            deps, server_id, migration_id, dest, f"Evacuation failed: {message}", EVACUATE
        )
        return
    async with transaction(deps.runtime.sessions) as session:
        stopped = old == "SHUTOFF"
        moved = await servers.move(
            session,
            server_id,
            expected=("REBUILD",),
            status="SHUTOFF" if stopped else "ACTIVE",
            vm_state="stopped" if stopped else "active",
            task_state=None,
            power_state=power,
            generation=Server.generation + 1,
            task_owner=None,
            task_deadline=None,
            fault=None,
        )
        if not moved:
            return
        await scheduler.release(session, server_id)  # the dead host's room
        await scheduler.rekey(session, migration_id, server_id)
        migration = await session.get(Migration, migration_id)
        if migration is not None:
            migration.status = "done"
            migration.updated_at = utcnow()
        row = await session.get(Server, server_id)
        if row is not None:
            await servers.emit(session, row, "update", "end")
        await actions.finish(session, server_id, EVACUATE)


async def migrate(deps: Deps, server_id: str, migration_id: str) -> None:
    """Stop on the source (kept), move ports and volumes, spawn on the destination:
    VERIFY_RESIZE; or back as it was, with the action's fault."""
    dest: str | None = None
    stopped_source = False
    action = MIGRATE
    try:
        dest = await _place(deps, server_id, migration_id)
        async with transaction(deps.runtime.sessions, write=False) as session:
            migration = await session.get(Migration, migration_id)
            assert migration is not None
            source, old = migration.source_host, migration.old_status
            action = RESIZE if migration.new_flavor is not None else MIGRATE
        if dest == source:  # a resize on its own host (allow_resize_to_same_host)
            stopped_source = True
            power = await _resize_here(deps, server_id, source, running=old == "ACTIVE")
        else:
            if old == "ACTIVE":
                await deps.agent(source).power(server_id, "stop")
                stopped_source = True
            await move_ports(deps, server_id, dest)
            await move_volumes(deps, server_id, source, dest)
            power = await _spawn_on(deps, server_id, dest, stopped=old == "SHUTOFF")
    except (MoveFailed, BootFailed, RpcError, AssertionError) as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        await _undo_migrate(deps, server_id, migration_id, dest, stopped_source, message)
        return
    async with transaction(deps.runtime.sessions) as session:
        moved = await servers.move(
            session,
            server_id,
            expected=("RESIZE",),
            status="VERIFY_RESIZE",
            vm_state="resized",
            task_state=None,
            host=dest,
            power_state=power,
            task_owner=None,
            task_deadline=None,
        )
        migration = await session.get(Migration, migration_id)
        if migration is not None and moved:
            migration.status = "finished"
            migration.updated_at = utcnow()
            row = await session.get(Server, server_id)
            if row is not None:
                await servers.emit(session, row, "update", "end")
                if action == RESIZE:
                    await servers.emit(session, row, "resize", "end")
            await actions.finish(session, server_id, action)


async def _undo_migrate(
    deps: Deps,
    server_id: str,
    migration_id: str,
    dest: str | None,
    stopped_source: bool,
    message: str,
) -> None:
    """A migration that failed half-way: the server back on its source as it was (a
    resize: at its old flavor)."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        migration = await session.get(Migration, migration_id)
        source = migration.source_host if migration is not None else None
        old = migration.old_status if migration is not None else "ACTIVE"
        old_flavor = migration.old_flavor if migration is not None else None
    action = RESIZE if old_flavor is not None else MIGRATE
    if dest is not None and dest == source:
        try:  # back to the copy the host kept (none kept yet: the guest is started)
            await deps.agent(source).finish_resize(server_id, revert=True, running=old == "ACTIVE")
        except RpcError as exc:
            log.warning("resize of %s not undone on %s: %s", server_id, source, exc)
        dest = source = None  # nothing else moved
    if dest is not None:
        await _destroy(deps, dest, server_id)
    if source is not None:
        try:
            await move_ports(deps, server_id, source)
            if dest is not None:
                await move_volumes(deps, server_id, dest, source)
            if stopped_source:
                await deps.agent(source).power(server_id, "start")
        except (MoveFailed, BootFailed, RpcError) as exc:
            log.warning("migration of %s not undone on %s: %s", server_id, source, exc)
    async with transaction(deps.runtime.sessions) as session:
        await scheduler.release(session, migration_id)
        row = await session.get(Migration, migration_id)
        if row is not None:
            row.status = "error"
            row.updated_at = utcnow()
        undone = await servers.move(
            session,
            server_id,
            expected=("RESIZE",),
            status=old,
            vm_state="stopped" if old == "SHUTOFF" else "active",
            task_state=None,
            task_owner=None,
            task_deadline=None,
            **(_flavor_values(old_flavor) if old_flavor else {}),
        )
        if undone and row is not None:
            await _unresize_quota(session, server_id, row)
        what = "Resize" if action == RESIZE else "Migration"
        await actions.finish(session, server_id, action, fault=f"{what} failed: {message}")


async def _failed(
    deps: Deps, server_id: str, migration_id: str, dest: str | None, message: str, action: str
) -> None:
    """An evacuation that failed: ERROR with the fault, the new host's copy and claim
    given back, the server's host the dead one again (another evacuate may try)."""
    if dest is not None:
        await _destroy(deps, dest, server_id)
    async with transaction(deps.runtime.sessions) as session:
        await scheduler.release(session, migration_id)
        migration = await session.get(Migration, migration_id)
        source = migration.source_host if migration is not None else None
        if migration is not None:
            migration.status = "error"
            migration.updated_at = utcnow()
        values: dict[str, Any] = {}
        if source is not None:
            values["host"] = source
        await servers.move(
            session,
            server_id,
            expected=MOVING,
            status="ERROR",
            vm_state="error",
            task_state=None,
            task_owner=None,
            task_deadline=None,
            fault=fault(message),
            **values,
        )
        await actions.finish(session, server_id, action, fault=message)


async def confirm(deps: Deps, server_id: str, migration_id: str) -> None:
    """The source's copy goes, its claim with it; the destination's becomes the server's."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        migration = await session.get(Migration, migration_id)
        source = migration.source_host if migration is not None else None
        dest = migration.dest_host if migration is not None else None
        old = migration.old_status if migration is not None else "ACTIVE"
        resized = migration is not None and migration.new_flavor is not None
    if source is not None and source == dest:
        destroyed = True  # one host: only the copy it kept goes
        try:
            await deps.agent(source).finish_resize(server_id, revert=False, running=old == "ACTIVE")
        except RpcError as exc:
            log.warning("kept copy of %s on %s not dropped: %s", server_id, source, exc)
    else:
        destroyed = await _destroy(deps, source, server_id)
    async with transaction(deps.runtime.sessions) as session:
        stopped = old == "SHUTOFF"
        moved = await servers.move(
            session,
            server_id,
            expected=("VERIFY_RESIZE",),
            when_task="resize_confirming",
            status="SHUTOFF" if stopped else "ACTIVE",
            vm_state="stopped" if stopped else "active",
            task_state=None,
            generation=Server.generation + 1,
        )
        if not moved:
            return
        await scheduler.release(session, server_id)
        await scheduler.rekey(session, migration_id, server_id)
        row = await session.get(Migration, migration_id)
        if row is not None:
            row.status = "confirmed"
            row.updated_at = utcnow()
        # A source that did not answer removes its copy at its next reconcile: the
        # server is no longer in its host state.
        failed = None if destroyed else f"The copy on {source} is removed by its reconcile."
        log.info("confirmed migration of %s: %s", server_id, failed or "source destroyed")
        server = await session.get(Server, server_id)
        if server is not None:
            await servers.emit(session, server, "update", "end")
            if resized:
                await servers.emit(session, server, "resize_confirm", "end")
        await actions.finish(session, server_id, CONFIRM)


async def revert(deps: Deps, server_id: str, migration_id: str) -> None:
    """The destination's copy goes, ports and volumes move back, the source's guest runs
    again if it ran; the destination's claim is given back."""
    async with transaction(deps.runtime.sessions, write=False) as session:
        migration = await session.get(Migration, migration_id)
        assert migration is not None
        source, dest, old = migration.source_host, migration.dest_host, migration.old_status
        old_flavor = migration.old_flavor
    message: str | None = None
    power = 4
    try:
        if dest == source:  # one host: back to the files and definition it kept
            reply = await deps.agent(source).finish_resize(
                server_id, revert=True, running=old == "ACTIVE"
            )
            power = power_code(reply.power_state, 4)
        else:
            await _destroy(deps, dest, server_id)
            await move_ports(deps, server_id, source)
            if dest is not None:
                await move_volumes(deps, server_id, dest, source)
            if old == "ACTIVE":
                reply = await deps.agent(source).power(server_id, "start")
                power = power_code(reply.power_state, 1)
    except (MoveFailed, BootFailed, RpcError) as exc:
        message = f"Revert failed: {getattr(exc, 'message', None) or exc}"
    async with transaction(deps.runtime.sessions) as session:
        stopped = old == "SHUTOFF"
        values: dict[str, Any] = (
            {"status": "ERROR", "vm_state": "error", "fault": fault(message)}
            if message
            else {
                "status": old,
                "vm_state": "stopped" if stopped else "active",
                "power_state": power,
            }
        )
        if old_flavor:  # the old size is the server's again (its claim never left)
            values |= _flavor_values(old_flavor)
        moved = await servers.move(
            session,
            server_id,
            expected=("REVERT_RESIZE",),
            host=source,
            task_state=None,
            task_owner=None,
            task_deadline=None,
            generation=Server.generation + 1,
            **values,
        )
        if not moved:
            return
        await scheduler.release(session, migration_id)
        row = await session.get(Migration, migration_id)
        if row is not None:
            await _unresize_quota(session, server_id, row)
            row.status = "error" if message else "reverted"
            row.updated_at = utcnow()
        server = await session.get(Server, server_id)
        if server is not None:
            await servers.emit(session, server, "update", "end")
            if old_flavor:
                await servers.emit(session, server, "resize_revert", "end")
        await actions.finish(session, server_id, REVERT, fault=message)


async def expired(session: AsyncSession, row: Server) -> None:
    """The sweeper's: a move past its deadline (its flow died with its process) ends in
    ERROR; the destination's claim is given back, the server stays where ``host`` says."""
    migration = await _active(session, row.id)
    resized = False
    if migration is not None:
        await scheduler.release(session, migration.id)
        migration.status = "error"
        migration.updated_at = utcnow()
        if migration.old_flavor:  # its claim is the old size's: so is the server
            resized = True
            if migration.new_flavor:
                await quotas.resize_server(
                    session, row.project_id, migration.new_flavor, migration.old_flavor, None
                )
            for key, value in _flavor_values(migration.old_flavor).items():
                setattr(row, key, value)
    row.vm_state = "error"
    row.task_state = None
    row.fault = fault("The move of the server did not finish within its deadline.")
    if row.status == "REBUILD":  # an evacuation, or a rebuild on its own host
        action = EVACUATE if migration is not None else actions.REBUILD
    else:
        action = REVERT if row.status == "REVERT_RESIZE" else (RESIZE if resized else MIGRATE)
    await actions.finish(session, row.id, action, fault=row.fault["message"])


async def forget(session: AsyncSession, server_id: str) -> None:
    """A deleted server's moves: their claims given back (its delete's transaction)."""
    rows = await session.scalars(
        select(Migration).where(
            Migration.server_id == server_id, Migration.status.in_(ACTIVE_STATES)
        )
    )
    for migration in rows:
        await scheduler.release(session, migration.id)
        migration.status = "error"


async def sources(session: AsyncSession, host: str) -> list[str]:
    """Servers whose copy ``host`` keeps for a revert (a migration from it under way)."""
    rows = await session.scalars(
        select(Migration.server_id).where(
            Migration.source_host == host,
            Migration.kind == MIGRATION,
            Migration.status.in_(ACTIVE_STATES),
        )
    )
    return list(rows)


def migration_view(migration: Migration) -> dict[str, Any]:
    """Nova's ``os-migrations`` entry (admins)."""
    return {
        "id": migration.id,
        "instance_uuid": migration.server_id,
        "migration_type": "evacuation" if migration.kind == EVACUATION else "migration",
        "source_compute": migration.source_host,
        "dest_compute": migration.dest_host,
        "source_node": migration.source_host,
        "dest_node": migration.dest_host,
        "status": migration.status,
        "created_at": migration.created_at.isoformat() if migration.created_at else None,
        "updated_at": migration.updated_at.isoformat() if migration.updated_at else None,
    }
