"""The service catalog a project-scoped token carries (and ``GET /v3/auth/catalog``), read
from the service and endpoint rows, and the rows the gateway seeds from its settings.

    await build_catalog(deps.sessions, project_id, user_id)
    # [CatalogService(id="...", type="identity", name="keystone",
    #   endpoints=(CatalogEndpoint(id, interface="public", region="RegionOne",
    #                              url="http://GW/identity"), ...)), ...]
    await seed_catalog(session, settings)      # bootstrap: what the settings configure
    format_url("http://GW/volume/v3/$(project_id)s", {"project_id": P})   # or None

``api/views.py`` shapes it as Keystone does (``catalog_view``). Only enabled services and
their enabled endpoints are listed; an endpoint whose URL names ``$(project_id)s`` (or
``$(tenant_id)s``, ``$(user_id)s``) gets the token's value, as Keystone substitutes them.

Seeding follows ``keystone-manage bootstrap``: at every start, each service the settings
configure (identity always; compute, which also serves images, network and volume when
their API replicas are set) is found by type or created, and its public, internal and
admin endpoints in ``settings.region`` are created or pointed at the gateway's public
URL again. Admins manage everything else through ``/v3/services``, ``/v3/endpoints`` and
``/v3/regions``. A seeded service whose API the settings no longer configure is removed
with its endpoints at the next start (the gateway could not proxy to it: a catalog entry
clients follow into a 404 is worse than none); one an admin made stays. Seeded rows have
ids derived from the entry, so replicas starting together make each row once.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_rpc.chassis.db import try_insert

from ..db.models import Endpoint, Region, Service, new_id
from ..settings import GatewaySettings

log = logging.getLogger(__name__)

INTERFACES = ("public", "internal", "admin")
# What an endpoint URL may name, as Keystone's whitelist (less its deployment-wide values).
SUBSTITUTIONS = ("tenant_id", "project_id", "user_id")

# configured service -> (catalog type, service name, path under the gateway).
ENTRIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "identity": (("identity", "keystone", "/identity"),),
    "compute": (
        ("compute", "nova", "/compute/v2.1"),
        # Images live in compute-svc behind their own catalog entry.
        ("image", "glance", "/image"),
    ),
    "network": (("network", "neutron", "/network"),),
    # Both types: Tempest matches "block-storage", older tools want "volumev3".
    "volume": (
        ("block-storage", "cinder", "/volume/v3/$(project_id)s"),
        ("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
    ),
}


@dataclass(frozen=True)
class CatalogEndpoint:
    id: str
    interface: str  # public, internal or admin
    region: str | None
    url: str


@dataclass(frozen=True)
class CatalogService:
    id: str
    type: str  # "compute", "block-storage", ...
    name: str  # "nova", "cinder", ...
    endpoints: tuple[CatalogEndpoint, ...]


@dataclass(frozen=True)
class Seed:
    type: str
    name: str
    url: str


class InvalidURL(ValueError):
    """A substitution that is not offered, or a ``%`` that is not one."""


# "%%", a substitution ("$(name)s" or "%(name)s"), or anything else starting with % or $(.
_TOKEN = re.compile(r"%%|[$%]\(([^()]*)\)s|%|\$\(")


def _substitute(url: str, values: Mapping[str, str]) -> str:
    """``url`` with its substitutions replaced; KeyError for a known one not in ``values``."""
    parts: list[str] = []
    at = 0
    for match in _TOKEN.finditer(url):
        parts.append(url[at : match.start()])
        at = match.end()
        name = match.group(1)
        if match.group(0) == "%%":
            parts.append("%")
        elif name is None or name not in SUBSTITUTIONS:
            raise InvalidURL(url)
        else:
            parts.append(values[name])
    parts.append(url[at:])
    return "".join(parts)


def check_endpoint_url(url: str) -> None:
    """Raise ``InvalidURL`` when ``url`` names anything but the offered substitutions."""
    _substitute(url, dict.fromkeys(SUBSTITUTIONS, ""))


def format_url(url: str, values: Mapping[str, str]) -> str | None:
    """The URL for a token, or None when it needs what the token lacks or is malformed."""
    try:
        return _substitute(url, values)
    except KeyError:
        return None  # e.g. $(project_id)s for a token without a project: left out
    except InvalidURL:
        log.error("malformed endpoint URL %r: left out of the catalog", url)
        return None


def _interface_order(endpoint: Endpoint) -> tuple[str, int, str]:
    rank = INTERFACES.index(endpoint.interface) if endpoint.interface in INTERFACES else 99
    return (endpoint.region_id or "", rank, endpoint.id)


async def build_catalog(
    sessions: async_sessionmaker[AsyncSession], project_id: str | None, user_id: str
) -> list[CatalogService]:
    """The enabled services with their enabled endpoints, URLs filled in for the token."""
    values = {"user_id": user_id}
    if project_id is not None:
        values |= {"project_id": project_id, "tenant_id": project_id}
    async with sessions() as session:
        services = (
            await session.scalars(
                select(Service).where(Service.enabled.is_(True)).order_by(Service.type, Service.id)
            )
        ).all()
        endpoints = (
            await session.scalars(
                select(Endpoint)
                .join(Service, Service.id == Endpoint.service_id)
                .where(Service.enabled.is_(True), Endpoint.enabled.is_(True))
            )
        ).all()
    by_service: dict[str, list[CatalogEndpoint]] = {}
    for endpoint in sorted(endpoints, key=_interface_order):
        url = format_url(endpoint.url, values)
        if url is not None:
            by_service.setdefault(endpoint.service_id, []).append(
                CatalogEndpoint(endpoint.id, endpoint.interface, endpoint.region_id, url)
            )
    return [CatalogService(s.id, s.type, s.name, tuple(by_service.get(s.id, ()))) for s in services]


# --- seeding --------------------------------------------------------------------------------


def stable_id(*parts: str) -> str:
    """The id of a seeded row: the same on every replica and at every start."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "stackling:" + ":".join(parts)).hex


def seeds(settings: GatewaySettings) -> list[Seed]:
    """The catalog entries the settings configure, with their URLs on the public URL."""
    base = settings.public_url.rstrip("/")
    configured = ["identity", *(name for name in ENTRIES if name in settings.service_urls())]
    return [
        Seed(kind, name, base + path)
        for service in configured
        for kind, name, path in ENTRIES[service]
    ]


async def seed_catalog(session: AsyncSession, settings: GatewaySettings) -> None:
    """Create what the settings configure and is missing; point seeded endpoints at them;
    remove the seeded services of APIs the settings no longer configure."""
    region = settings.region
    await _unseed_unconfigured(session, settings)
    if await session.get(Region, region) is None:
        await try_insert(session, Region(id=region, description="", parent_region_id=None))
    for seed in seeds(settings):
        service = await _seeded_service(session, seed)
        rows = await session.scalars(
            select(Endpoint)
            .where(Endpoint.service_id == service.id, Endpoint.region_id == region)
            .order_by(Endpoint.id)
        )
        existing: dict[str, Endpoint] = {}
        for row in rows.all():
            existing.setdefault(row.interface, row)
        for interface in INTERFACES:
            endpoint = existing.get(interface)
            if endpoint is not None:
                endpoint.url = seed.url  # the settings win, as keystone-manage bootstrap
                continue
            endpoint_id = stable_id(region, seed.type, interface)
            if await session.get(Endpoint, endpoint_id) is not None:
                endpoint_id = new_id()  # that id was moved to another service by an admin
            await try_insert(
                session,
                Endpoint(
                    id=endpoint_id,
                    service_id=service.id,
                    region_id=region,
                    interface=interface,
                    url=seed.url,
                    enabled=True,
                ),
            )
    await session.flush()


async def _unseed_unconfigured(session: AsyncSession, settings: GatewaySettings) -> None:
    """Delete the seeded service rows (and their endpoints) of unconfigured APIs."""
    configured = {seed.type for seed in seeds(settings)}
    gone = [
        stable_id(kind)
        for entries in ENTRIES.values()
        for kind, _name, _path in entries
        if kind not in configured
    ]
    # Endpoints first: SQLite enforces no foreign keys unless asked, so no cascade to rely on.
    await session.execute(delete(Endpoint).where(Endpoint.service_id.in_(gone)))
    await session.execute(delete(Service).where(Service.id.in_(gone)))


async def _seeded_service(session: AsyncSession, seed: Seed) -> Service:
    """The seeded service of this type, else the first of the type, else a new one."""
    service_id = stable_id(seed.type)
    service = await session.get(Service, service_id)
    if service is None:
        service = await session.scalar(
            select(Service).where(Service.type == seed.type).order_by(Service.id).limit(1)
        )
    if service is None:
        row = Service(id=service_id, type=seed.type, name=seed.name, enabled=True)
        if await try_insert(session, row):
            return row
        service = await session.get(Service, service_id)  # another replica made it
        assert service is not None
    return service
