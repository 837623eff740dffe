"""Servers: the create request checked, the row, the Nova view, updates and state moves."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import ServerPayload
from common_rpc.errors import NotFound
from common_rpc.outbox import add_event

from ..db.models import Server, ServerPort, VolumeAttachment, utcnow
from . import flavors, images, keypairs, quotas
from .common import flag, iso, name_of, new_id, text, try_insert
from .errors import conflict, invalid, not_found

EVENT = "compute.server.{action}.{phase}"
SETTLED = ("ACTIVE", "SHUTOFF", "ERROR", "BUILD", "REBOOT", "HARD_REBOOT")
# What the API shows for a vm_state while the row's status is DELETING.
STATUS_OF_VM_STATE = {
    "building": "BUILD",
    "active": "ACTIVE",
    "stopped": "SHUTOFF",
    "error": "ERROR",
}
USER_DATA_LIMIT = 65535
METADATA_LIMIT = 128


def _ref(value: Any, key: str) -> str:
    """flavorRef/imageRef: an id or a URL ending in one."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise invalid(f"Invalid input for field/attribute {key}.")
    return value.rstrip("/").rsplit("/", 1)[-1]


def _uuid(value: Any, key: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        message = f"Invalid input for field/attribute {key}: {value!r} is not a UUID."
        raise invalid(message) from None


def requested_networks(value: Any) -> list[dict[str, Any]]:
    """``[{"network_id"}|{"port_id"}, "fixed_ip"?]``; absent/[]/"none"/"auto": none asked."""
    if value is None or value in ("none", "auto") or value == []:
        return []
    if not isinstance(value, list):
        raise invalid("Invalid input for field/attribute networks.")
    out: list[dict[str, Any]] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise invalid("Invalid input for field/attribute networks.")
        if entry.get("port"):
            out.append({"port_id": _uuid(entry["port"], "port")})
            continue
        if not entry.get("uuid"):
            raise invalid("Bad networks format: each needs a network uuid or a port.")
        wanted: dict[str, Any] = {"network_id": _uuid(entry["uuid"], "uuid")}
        if entry.get("fixed_ip"):
            wanted["fixed_ip"] = text(entry, "fixed_ip", limit=64)
        out.append(wanted)
    ports = [n["port_id"] for n in out if "port_id" in n]
    if len(ports) != len(set(ports)):
        raise invalid("The same port was requested twice.")
    return out


def _user_data(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > USER_DATA_LIMIT:
        raise invalid(f"User data must be base64 text of at most {USER_DATA_LIMIT} characters.")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("User data needs to be valid base 64.") from None
    return value


def metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > METADATA_LIMIT:
        raise invalid(f"Invalid metadata: an object of at most {METADATA_LIMIT} entries.")
    for key, item in value.items():
        if not key or len(key) > 255 or not isinstance(item, str) or len(item) > 255:
            raise invalid("Invalid metadata: keys and values are strings of 1 to 255 characters.")
    return dict(value)


def _count(body: dict[str, Any], key: str) -> None:
    value = body.get(key, 1)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"Invalid input for field/attribute {key}.")
    if value != 1:
        raise invalid(f"{key} greater than 1 is not supported.")


def _image_ref(body: dict[str, Any]) -> str:
    """The image to boot; a volume as the boot device is refused (not offered)."""
    image_ref = body.get("imageRef")
    for bdm in body.get("block_device_mapping_v2") or []:
        if not isinstance(bdm, dict):
            raise invalid("Invalid input for field/attribute block_device_mapping_v2.")
        if bdm.get("source_type") == "image" and bdm.get("destination_type", "local") == "local":
            image_ref = image_ref or bdm.get("uuid")
        elif bdm.get("source_type") in ("volume", "snapshot", "blank"):
            raise invalid("Block device mappings with volumes are not supported.")
    if not image_ref:
        raise invalid("Missing imageRef attribute.")
    return _ref(image_ref, "imageRef")


async def create(
    session: AsyncSession,
    ctx: RequestContext,
    body: dict[str, Any],
    *,
    owner: str,
    build_timeout_s: float,
    quota_defaults: Mapping[str, int],
    security_groups: list[dict[str, str]] | None = None,
) -> tuple[Server, str]:
    """The BUILD row (the boot runs after the 202) and the admin password to echo.

    The row takes its project's quota in the same transaction (403 over quota, and the
    transaction rolls back); ``quota_defaults``: the limits where an admin set none.
    ``security_groups``: the groups the request named, found already (``{"id", "name"}``);
    None when it named none.
    """
    if not ctx.project_id:
        raise invalid("A project-scoped token is required.")
    name = name_of(body)
    for key in ("min_count", "max_count"):
        _count(body, key)
    try:
        flavor = await flavors.get(session, ctx, _ref(body.get("flavorRef"), "flavorRef"))
    except NotFound:
        raise invalid(f"Flavor {body.get('flavorRef')} could not be found.") from None
    image_id = _image_ref(body)
    try:
        image = await images.get(session, ctx, image_id)
    except NotFound:
        raise invalid(f"Image {image_id} could not be found.") from None
    if image.status != "active":
        raise invalid(f"Image {image_id} is not active.")
    if image.min_ram > flavor.ram_mb or image.min_disk > max(flavor.disk_gb, 0) > 0:
        raise invalid("Flavor's memory or disk is too small for requested image.")
    public_key = None
    key_name = body.get("key_name")
    if key_name is not None:
        try:
            public_key = (await keypairs.get(session, ctx, str(key_name))).public_key
        except NotFound:
            raise invalid(f"Invalid key_name provided: {key_name}.") from None
    admin_pass = body.get("adminPass") or secrets.token_urlsafe(9)
    if not isinstance(admin_pass, str):
        raise invalid("Invalid input for field/attribute adminPass.")
    if "config_drive" in body and body["config_drive"] not in ("", None):
        flag({"config_drive": body["config_drive"]}, "config_drive", True)
    server = Server(
        id=new_id(),
        project_id=ctx.project_id,
        user_id=ctx.user_id or "",
        name=name,
        flavor_id=flavor.id,
        image_id=image.id,
        vcpus=flavor.vcpus,
        ram_mb=flavor.ram_mb,
        disk_gb=flavor.disk_gb,
        status="BUILD",
        task_owner=owner,
        task_deadline=datetime.now(UTC) + timedelta(seconds=build_timeout_s),
        vm_state="building",
        task_state="scheduling",
        power_state=0,
        generation=1,
        key_name=str(key_name) if key_name is not None else None,
        public_key=public_key,
        user_data=_user_data(body.get("user_data")),
        meta=metadata(body.get("metadata")),
        requested_networks=requested_networks(body.get("networks")),
        nics=[],
        security_groups=security_groups,
        access_ipv4=text(body, "accessIPv4", limit=64),
        access_ipv6=text(body, "accessIPv6", limit=64),
    )
    session.add(server)
    await session.flush()
    await quotas.reserve_server(session, server, quota_defaults)
    for wanted in server.requested_networks:
        if "port_id" in wanted:
            held = ServerPort(port_id=wanted["port_id"], server_id=server.id)
            if not await try_insert(session, held):
                raise conflict(f"Port {wanted['port_id']} is still in use.")
    await emit(session, server, "create", "start")
    return server, admin_pass


def visible(ctx: RequestContext, all_tenants: bool = False) -> Any:
    query = select(Server).order_by(Server.created_at.desc(), Server.id)
    if ctx.is_admin and all_tenants:
        return query
    return query.where(Server.project_id == ctx.project_id)


async def get(session: AsyncSession, ctx: RequestContext, server_id: str) -> Server:
    query = select(Server).where(Server.id == server_id)
    if not ctx.is_admin:
        query = query.where(Server.project_id == ctx.project_id)
    server = (await session.scalars(query)).first()
    if server is None:
        raise not_found("Server", server_id)
    return server


async def list_all(
    session: AsyncSession, ctx: RequestContext, params: dict[str, str]
) -> list[Server]:
    # Nova: any all_tenants but an explicit false lists every project's (admins only).
    wanted = params.get("all_tenants")
    all_tenants = wanted is not None and wanted.lower() not in ("0", "false", "no")
    rows = list(await session.scalars(visible(ctx, all_tenants)))
    if params.get("name"):
        rows = [r for r in rows if params["name"] in r.name]
    if params.get("status"):
        rows = [r for r in rows if status_of(r) == params["status"].upper()]
    for key, attr in (("image", "image_id"), ("flavor", "flavor_id"), ("host", "host")):
        if params.get(key):
            rows = [r for r in rows if getattr(r, attr) == params[key]]
    return rows


async def attachments(session: AsyncSession, server_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {sid: [] for sid in server_ids}
    if not server_ids:
        return out
    query = select(VolumeAttachment).where(VolumeAttachment.server_id.in_(server_ids))
    for row in await session.scalars(query):
        out[row.server_id].append(row.volume_id)
    return out


def status_of(server: Server) -> str:
    if server.status == "DELETING":
        return STATUS_OF_VM_STATE.get(server.vm_state, "ACTIVE")
    return server.status


def addresses(server: Server) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for nic in server.nics or []:
        if not nic.get("bound"):
            continue
        entries = out.setdefault(nic.get("network_name") or nic["network_id"], [])
        for ip in nic.get("ips", []):
            entries.append(
                {
                    "addr": ip,
                    "version": 6 if ":" in ip else 4,
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": nic.get("mac"),
                }
            )
    return out


def security_group_names(server: Server) -> list[dict[str, str]]:
    """The view's ``security_groups``: the server's groups by name; until its boot recorded
    what its ports got, the project's ``default`` if it asked for a network and named none."""
    if server.security_groups is None:
        makes_ports = any("network_id" in w for w in server.requested_networks or [])
        return [{"name": "default"}] if makes_ports and server.status != "ERROR" else []
    return [{"name": g["name"]} for g in server.security_groups]


def host_id(server: Server) -> str:
    """Nova's opaque per-project host id: equal for two servers on one host."""
    if not server.host:
        return ""
    return hashlib.sha224((server.project_id + server.host).encode()).hexdigest()


def view(
    server: Server,
    ctx: RequestContext,
    link: Any,
    volumes: list[str],
) -> dict[str, Any]:
    """The 2.1 server view (``link(collection, id)`` makes the links)."""
    status = status_of(server)
    out: dict[str, Any] = {
        "id": server.id,
        "name": server.name,
        "status": status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": dict(server.meta or {}),
        "hostId": host_id(server),
        "image": {"id": server.image_id, "links": link("images", server.image_id)}
        if server.image_id
        else "",
        "flavor": {"id": server.flavor_id, "links": link("flavors", server.flavor_id)},
        "created": iso(server.created_at),
        "updated": iso(server.updated_at),
        "addresses": addresses(server),
        "links": link("servers", server.id),
        "accessIPv4": server.access_ipv4,
        "accessIPv6": server.access_ipv6,
        "progress": 0,
        "key_name": server.key_name,
        "config_drive": "True",
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": "nova",
        "OS-EXT-STS:power_state": server.power_state,
        "OS-EXT-STS:task_state": "deleting" if server.status == "DELETING" else server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-SRV-USG:launched_at": iso(server.launched_at),
        "OS-SRV-USG:terminated_at": None,
        "os-extended-volumes:volumes_attached": [{"id": v} for v in volumes],
    }
    groups = security_group_names(server)
    if groups:  # Nova leaves the key out for a server whose ports have no group
        out["security_groups"] = groups
    if status == "ERROR" and server.fault:
        out["fault"] = dict(server.fault)
    if ctx.is_admin:
        out["OS-EXT-SRV-ATTR:host"] = server.host
        out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server.host
        out["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{server.id}"
    return out


UPDATE_VIEW_KEYS = (
    "id name status tenant_id user_id metadata hostId image flavor created updated addresses "
    "links accessIPv4 accessIPv6 progress OS-DCF:diskConfig fault"
).split()


async def update_server(
    session: AsyncSession, ctx: RequestContext, server_id: str, body: dict[str, Any]
) -> Server:
    server = await get(session, ctx, server_id)
    unknown = set(body) - {"name", "accessIPv4", "accessIPv6", "metadata"}
    if unknown:
        raise invalid(f"Additional properties are not allowed ({', '.join(sorted(unknown))}).")
    if "name" in body:
        server.name = name_of(body)
    if "accessIPv4" in body:
        server.access_ipv4 = text(body, "accessIPv4", limit=64)
    if "accessIPv6" in body:
        server.access_ipv6 = text(body, "accessIPv6", limit=64)
    if "metadata" in body:
        server.meta = metadata(body["metadata"])
    server.updated_at = utcnow()
    await session.flush()
    await emit(session, server, "update", "end")
    return server


async def set_metadata(
    session: AsyncSession, ctx: RequestContext, server_id: str, items: Any, *, replace: bool
) -> Server:
    server = await get(session, ctx, server_id)
    new = metadata(items)
    server.meta = new if replace else {**(server.meta or {}), **new}
    if len(server.meta) > METADATA_LIMIT:
        raise invalid(f"Invalid metadata: at most {METADATA_LIMIT} entries.")
    server.updated_at = utcnow()
    await session.flush()
    return server


async def move(
    session: AsyncSession,
    server_id: str,
    *,
    expected: tuple[str, ...],
    when_task: str | tuple[()] | None = (),
    owner: str | None = None,
    **values: Any,
) -> bool:
    """Compare-and-swap on ``status`` (and on ``task_state`` when ``when_task`` is given,
    and on ``task_owner`` when ``owner`` is: the work is still this process's)."""
    query = update(Server).where(Server.id == server_id, Server.status.in_(expected))
    if owner is not None:
        query = query.where(Server.task_owner == owner)
    if when_task != ():
        query = query.where(
            Server.task_state.is_(None) if when_task is None else Server.task_state == when_task
        )
    result = await session.execute(
        query.values(updated_at=utcnow(), **values).execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def payload(server: Server) -> ServerPayload:
    return ServerPayload(
        id=server.id,
        project_id=server.project_id,
        name=server.name,
        status=status_of(server) if server.status != "DELETING" else "DELETED",
        host=server.host,
        fault=(server.fault or {}).get("message"),
    )


async def emit(session: AsyncSession, server: Server, action: str, phase: str) -> None:
    await add_event(
        session,
        EVENT.format(action=action, phase=phase),
        payload(server),
        project_id=server.project_id,
    )


def conflict_state(server: Server, action: str) -> Exception:
    return conflict(
        f"Cannot '{action}' instance {server.id} while it is in vm_state {server.vm_state}"
        + (f" and task_state {server.task_state}" if server.task_state else "")
    )
