"""Servers: the create request checked, the row, the Nova view, updates and state moves."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.context import RequestContext
from common_rpc.contracts.payloads import ServerPayload
from common_rpc.errors import Forbidden, Invalid, NotFound
from common_rpc.outbox import add_event

from ..db.models import (
    Flavor,
    FloatingIp,
    Image,
    Server,
    ServerPort,
    VolumeAttachment,
    utcnow,
)
from . import flavors, images, keypairs, quotas
from .common import flag, iso, new_id, nova_name, try_insert
from .errors import bad_field, conflict, invalid

EVENT = "compute.server.{action}.{phase}"
SETTLED = (
    "ACTIVE",
    "SHUTOFF",
    "ERROR",
    "BUILD",
    "REBOOT",
    "HARD_REBOOT",
    "VERIFY_RESIZE",
    "PAUSED",
    "SUSPENDED",
    "SHELVED",
    "SHELVED_OFFLOADED",
)
# What the API shows for a vm_state while the row's status is DELETING.
STATUS_OF_VM_STATE = {
    "building": "BUILD",
    "active": "ACTIVE",
    "stopped": "SHUTOFF",
    "error": "ERROR",
    "resized": "VERIFY_RESIZE",
    "paused": "PAUSED",
    "suspended": "SUSPENDED",
    "shelved": "SHELVED",
    "shelved_offloaded": "SHELVED_OFFLOADED",
}
USER_DATA_LIMIT = 65535
METADATA_LIMIT = 128
GIB = 1024**3
METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
# Nova shows ``progress`` only for these (views/servers.py ``_progress_statuses``).
PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
NOT_ONE_OF = "is not valid under any of the given schemas"


def server_not_found(server_id: str) -> NotFound:
    """Nova's 404 for a server that is not there (or is another project's)."""
    return NotFound(f"Instance {server_id} could not be found.")


def _address(value: Any, version: int) -> str | None:
    """``value`` as an IP address of ``version`` in its canonical form (RFC 5952 for IPv6:
    ``0:0::babe:220.12.22.2`` is ``::babe:dc0c:1602``); None if it is not one (jsonschema's
    ``ipv4``/``ipv6`` formats, which Nova checks with: no zone index)."""
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)
    except ValueError:
        return None
    if getattr(address, "scope_id", None):
        return None
    return str(address)


def access_ip(body: dict[str, Any], key: str) -> str:
    """``accessIPv4``/``accessIPv6`` checked as Nova's schema does, kept canonical."""
    value = body.get(key)
    version = 6 if key.endswith("6") else 4
    if not isinstance(value, str):
        raise bad_field(key, value, f"{value!r} is not of type 'string'")
    canonical = _address(value, version)
    if canonical is None:
        raise bad_field(key, value, f"{value!r} is not a 'ipv{version}'")
    return canonical


def canonical_ip(value: str) -> str:
    """An address as every response shows it (RFC 5952); anything else unchanged."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _shown_access_ip(value: str | None, version: int) -> str:
    """A stored access IP as the view shows it: canonical, or "" when unset or not an
    address of its version (a value kept before create and update checked it)."""
    return (_address(value, version) or "") if value else ""


def _flavor_ref(body: dict[str, Any]) -> str:
    """flavorRef (Nova: a string or an integer, not empty): an id or a URL ending in one."""
    if "flavorRef" not in body:
        raise bad_field("server", body, "'flavorRef' is a required property")
    value = body["flavorRef"]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise bad_field("flavorRef", value, f"{value!r} is not of type 'string', 'integer'")
    if value == "":
        raise bad_field("flavorRef", value, "'' should be non-empty")
    return str(value).rstrip("/").rsplit("/", 1)[-1]


def _is_uuid(value: Any) -> bool:
    """Nova's ``uuid`` format (oslo's ``is_uuid_like``)."""
    if not isinstance(value, str):
        return False
    bare = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    try:
        return str(uuid.UUID(value)).replace("-", "") == bare
    except ValueError:
        return False


def _uuid(value: Any, key: str) -> str:
    if not _is_uuid(value):
        raise bad_field(key, value, f"{value!r} is not a 'uuid'")
    return str(uuid.UUID(value))


def requested_networks(value: Any) -> list[dict[str, Any]]:
    """``[{"network_id"}|{"port_id"}, "fixed_ip"?]``; absent/[]/"none"/"auto": none asked.

    Refusals in Nova's words: its schema's first (an entry's ``fixed_ip`` an address,
    ``port`` a UUID), then its controller's (a network uuid, a port given twice).
    """
    if value is None or value in ("none", "auto") or value == []:
        return []
    if not isinstance(value, list):
        raise bad_field("networks", value, f"{value!r} is not of type 'array'")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise bad_field(str(index), entry, f"{entry!r} is not of type 'object'")
        if "fixed_ip" in entry:
            fixed_ip = entry["fixed_ip"]
            if not isinstance(fixed_ip, str):
                raise bad_field("fixed_ip", fixed_ip, f"{fixed_ip!r} is not of type 'string'")
            if (_address(fixed_ip, 4) or _address(fixed_ip, 6)) is None:
                raise bad_field("fixed_ip", fixed_ip, f"{fixed_ip!r} {NOT_ONE_OF}")
        if entry.get("port") is not None:
            _uuid(entry["port"], "port")
    out: list[dict[str, Any]] = []
    ports: list[str] = []
    for entry in value:
        fixed_ip = entry.get("fixed_ip")
        if entry.get("port"):
            port_id = str(uuid.UUID(entry["port"]))
            if port_id in ports:
                raise invalid(
                    f"Port ID '{entry['port']}' was specified twice: you cannot attach a "
                    "port multiple times."
                )
            if fixed_ip is not None:
                raise invalid(
                    f"Specified Fixed IP '{fixed_ip}' cannot be used with port "
                    f"'{entry['port']}': the two cannot be specified together."
                )
            ports.append(port_id)
            out.append({"port_id": port_id})
            continue
        if "uuid" not in entry:
            raise invalid("Bad network format: missing 'uuid'")
        network_id = entry["uuid"]
        if not _is_uuid(network_id):
            message = f"Bad networks format: network uuid is not in proper format ({network_id})"
            raise invalid(message)
        wanted: dict[str, Any] = {"network_id": str(uuid.UUID(network_id))}
        if fixed_ip:
            wanted["fixed_ip"] = canonical_ip(fixed_ip)
        out.append(wanted)
    return out


def _user_data(value: Any) -> str | None:
    """Nova's ``user_data``: base64 (decoded as Nova does, ignoring line breaks) of at most
    65535 characters."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad_field("user_data", value, f"{value!r} is not of type 'string'")
    try:
        base64.b64decode(value)
    except (binascii.Error, ValueError):
        raise bad_field("user_data", value, f"{value!r} is not a 'base64'") from None
    if len(value) > USER_DATA_LIMIT:
        raise bad_field("user_data", value, f"{value!r} is too long")
    return value


def metadata(value: Any) -> dict[str, str]:
    """Nova's ``metadata``: keys of ``METADATA_KEY``, string values of at most 255
    characters; more than 128 items is its 403."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_field("metadata", value, f"{value!r} is not of type 'object'")
    for key, item in value.items():
        if not isinstance(item, str):
            raise bad_field(key, item, f"{item!r} is not of type 'string'")
        if len(item) > 255:
            raise bad_field(key, item, f"{item!r} is too long")
    wrong = sorted(k for k in value if not METADATA_KEY.match(k))
    if wrong:
        verb = "does" if len(wrong) == 1 else "do"
        reason = (
            f"{', '.join(map(repr, wrong))} {verb} not match any of the regexes: "
            f"{METADATA_KEY.pattern!r}"
        )
        raise bad_field("metadata", value, reason)
    if len(value) > METADATA_LIMIT:
        raise metadata_over_limit()
    return dict(value)


def metadata_over_limit() -> Forbidden:
    return Forbidden(f"Maximum number of metadata items exceeds {METADATA_LIMIT}")


def _count(body: dict[str, Any], key: str) -> None:
    value = body.get(key, 1)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"Invalid input for field/attribute {key}.")


def counts(body: dict[str, Any]) -> tuple[int, int]:
    """``(min_count, max_count)`` of a checked create body (Nova's 400 when min > max)."""
    low, high = (int(body.get(key, 1)) for key in ("min_count", "max_count"))
    if "max_count" not in body:
        high = max(low, high)
    if low > high:
        raise invalid("min_count must be <= max_count")
    return low, high


def check_create(body: dict[str, Any]) -> None:
    """What Nova's create schema refuses, before anything is looked up, in the order its
    schema lists the fields, with its messages (the lookups come after, in ``create``)."""
    if "name" in body:
        nova_name(body)
    image_ref = body.get("imageRef")
    if "imageRef" in body and image_ref != "" and not _is_uuid(image_ref):
        raise bad_field("imageRef", image_ref, f"{image_ref!r} {NOT_ONE_OF}")
    if "flavorRef" in body:
        _flavor_ref(body)
    admin_pass = body.get("adminPass", "")
    if not isinstance(admin_pass, str):
        raise bad_field("adminPass", admin_pass, f"{admin_pass!r} is not of type 'string'")
    metadata(body.get("metadata"))
    requested_networks(body.get("networks"))
    for key in ("accessIPv4", "accessIPv6"):
        if key in body:
            access_ip(body, key)
    if body.get("key_name") is not None:
        nova_name(body, "key_name")
    for key in ("min_count", "max_count"):
        _count(body, key)
    _user_data(body.get("user_data"))
    for key in ("name", "flavorRef"):
        if key not in body:
            raise bad_field("server", body, f"{key!r} is a required property")


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
        raise invalid("Missing imageRef attribute")
    return str(uuid.UUID(image_ref)) if _is_uuid(image_ref) else str(image_ref)


def _check_sizes(flavor: Flavor, image: Image) -> None:
    """Nova's checks of an image against the flavor's memory and root disk (0: unchecked)."""
    if image.min_ram > flavor.ram_mb:
        raise invalid("Flavor's memory is too small for requested image.")
    disk = flavor.disk_gb * GIB
    if disk <= 0:
        return
    if (image.size or 0) > disk:
        raise invalid(
            f"Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, "
            f"image is {image.size} bytes."
        )
    if image.min_disk * GIB > disk:
        raise invalid(
            "Flavor's disk is smaller than the minimum size specified in image metadata. "
            f"Flavor disk is {disk} bytes, minimum size is {image.min_disk * GIB} bytes."
        )


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
    check_create(body)
    image_id = _image_ref(body)
    flavor_id = _flavor_ref(body)
    try:
        flavor = await flavors.get(session, ctx, flavor_id)
    except NotFound:
        raise invalid(f"Flavor {flavor_id} could not be found.") from None
    try:
        image = await images.get(session, ctx, image_id)
    except NotFound:
        raise invalid("Can not find requested image") from None
    if image.status != "active":
        raise invalid(f"Image {image_id} is not active.")
    _check_sizes(flavor, image)
    public_key = None
    key_name = body.get("key_name")
    if key_name is not None:
        try:
            public_key = (await keypairs.get(session, ctx, str(key_name))).public_key
        except NotFound:
            raise invalid("Invalid key_name provided.") from None
    admin_pass = body.get("adminPass") or secrets.token_urlsafe(9)
    if "config_drive" in body and body["config_drive"] not in ("", None):
        flag({"config_drive": body["config_drive"]}, "config_drive", True)
    server = Server(
        id=new_id(),
        project_id=ctx.project_id,
        user_id=ctx.user_id or "",
        name=body["name"],
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
        access_ipv4=access_ip(body, "accessIPv4") if "accessIPv4" in body else "",
        access_ipv6=access_ip(body, "accessIPv6") if "accessIPv6" in body else "",
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
        raise server_not_found(server_id)
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


def _address_entry(addr: str, kind: str, mac: str | None) -> dict[str, Any]:
    return {
        "addr": addr,
        "version": 6 if ":" in addr else 4,
        "OS-EXT-IPS:type": kind,
        "OS-EXT-IPS-MAC:mac_addr": mac,
    }


def addresses(
    server: Server, floating: Mapping[str, list[FloatingIp]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Nova's ``addresses``: per network name, the attached ports' fixed addresses, then
    the floating IPs on those ports (``floating``: by port, ``floating_ips.of_servers``)."""
    fixed: dict[str, list[dict[str, Any]]] = {}
    floats: dict[str, list[dict[str, Any]]] = {}
    for nic in server.nics or []:
        if not nic.get("bound"):
            continue
        label = nic.get("network_name") or nic["network_id"]
        entries = fixed.setdefault(label, [])
        for ip in nic.get("ips", []):
            entries.append(_address_entry(canonical_ip(ip), "fixed", nic.get("mac")))
        for fip in (floating or {}).get(nic["port_id"], []):
            entry = _address_entry(canonical_ip(fip.address), "floating", nic.get("mac"))
            floats.setdefault(label, []).append(entry)
    return {label: entries + floats.get(label, []) for label, entries in fixed.items()}


def security_group_names(server: Server) -> list[dict[str, str]]:
    """The view's ``security_groups``: the server's groups by name; until its boot recorded
    what its ports got, the project's ``default`` if it asked for a network and named none."""
    if server.security_groups is None:
        makes_ports = any("network_id" in w for w in server.requested_networks or [])
        return [{"name": "default"}] if makes_ports and server.status != "ERROR" else []
    return [{"name": g["name"]} for g in server.security_groups]


def zone_shown(server: Server) -> str:
    """Nova's ``OS-EXT-AZ:availability_zone``: once placed, its host's zone; before, the
    zone the create asked for, or ""."""
    zone = (server.availability_zone or "").partition(":")[0]
    if server.host:
        return zone or "nova"
    return zone


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
    floating: Mapping[str, list[FloatingIp]] | None = None,
) -> dict[str, Any]:
    """The 2.1 server view (``link(collection, id)`` makes the links; ``floating``: the
    floating IPs by port, for ``addresses``)."""
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
        "addresses": addresses(server, floating),
        "links": link("servers", server.id),
        "accessIPv4": _shown_access_ip(server.access_ipv4, 4),
        "accessIPv6": _shown_access_ip(server.access_ipv6, 6),
        "key_name": server.key_name,
        "config_drive": "True",
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": zone_shown(server),
        "OS-EXT-STS:power_state": server.power_state,
        "OS-EXT-STS:task_state": "deleting" if server.status == "DELETING" else server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-SRV-USG:launched_at": iso(server.launched_at),
        "OS-SRV-USG:terminated_at": None,
        "os-extended-volumes:volumes_attached": [{"id": v} for v in volumes],
    }
    if status in PROGRESS_STATUSES:
        out["progress"] = 0
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


def basic_view(full: dict[str, Any]) -> dict[str, Any]:
    """The update's and rebuild's answer in Nova: the core keys only, and each address as
    ``{addr, version}`` (no ``OS-EXT-IPS`` attributes)."""
    out = {k: v for k, v in full.items() if k in UPDATE_VIEW_KEYS}
    if "addresses" in out:
        out["addresses"] = {
            net: [{"addr": a["addr"], "version": a["version"]} for a in entries]
            for net, entries in out["addresses"].items()
        }
    return out


async def update_server(
    session: AsyncSession, ctx: RequestContext, server_id: str, body: dict[str, Any]
) -> Server:
    """Nova's update: ``name``, ``accessIPv4``, ``accessIPv6`` (``OS-DCF:diskConfig``
    accepted and ignored: disks are not resized here), checked before the server is
    looked up, as Nova's schema is."""
    if "name" in body:
        nova_name(body)
    disk_config = body.get("OS-DCF:diskConfig", "MANUAL")
    if disk_config not in ("AUTO", "MANUAL"):
        reason = f"{disk_config!r} is not one of ['AUTO', 'MANUAL']"
        raise bad_field("OS-DCF:diskConfig", disk_config, reason)
    addresses = {key: access_ip(body, key) for key in ("accessIPv4", "accessIPv6") if key in body}
    unknown = set(body) - {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
    if unknown:
        words = ", ".join(repr(k) for k in sorted(unknown))
        reason = f"Additional properties are not allowed ({words} "
        reason += f"{'was' if len(unknown) == 1 else 'were'} unexpected)"
        raise bad_field("server", body, reason)
    server = await get(session, ctx, server_id)
    if "name" in body:
        server.name = body["name"]
    server.access_ipv4 = addresses.get("accessIPv4", server.access_ipv4)
    server.access_ipv6 = addresses.get("accessIPv6", server.access_ipv6)
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
        raise metadata_over_limit()
    server.updated_at = utcnow()
    await session.flush()
    return server


def metadata_item(server: Server, key: str) -> dict[str, str]:
    """``{key: value}`` of one metadata item (Nova's 404 text when it is not there)."""
    meta = server.meta or {}
    if key not in meta:
        raise NotFound("Metadata item was not found")
    return {key: meta[key]}


async def set_metadata_item(
    session: AsyncSession, ctx: RequestContext, server_id: str, key: str, body: Any
) -> Server:
    """``PUT .../metadata/{key}`` with ``{"meta": {key: value}}``: one item, its key the
    URL's (Nova's 400 texts otherwise)."""
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        raise Invalid(
            "Invalid input for field/attribute meta. Value: None. 'meta' is a required property"
        )
    if len(meta) != 1:
        raise Invalid("Request body contains too many items")
    if key not in meta:
        raise Invalid("Request body and URI mismatch")
    return await set_metadata(session, ctx, server_id, meta, replace=False)


async def delete_metadata_item(
    session: AsyncSession, ctx: RequestContext, server_id: str, key: str
) -> None:
    server = await get(session, ctx, server_id)
    metadata_item(server, key)  # 404 when absent
    server.meta = {k: v for k, v in (server.meta or {}).items() if k != key}
    server.updated_at = utcnow()
    await session.flush()


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
