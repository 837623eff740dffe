"""The service catalog a project-scoped token carries (and ``GET /v3/auth/catalog``).

    build_catalog(settings, project_id)
    # [CatalogService(id="...", type="identity", name="keystone",
    #   endpoints=(Endpoint(id, interface="public", region="RegionOne",
    #                       url="http://GW/identity"), ...)), ...]

``api/views.py`` shapes it as Keystone does (``catalog_view``).

Identity is always listed; compute (which also serves images), network and volume only
when the deployment configures their API replicas (``settings.service_urls()``). Every
URL is on the gateway's ``public_url``: clients only ever talk to the gateway. Ids are
derived from the entry, so every replica hands out the same catalog.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..settings import GatewaySettings

INTERFACES = ("public", "internal", "admin")

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
        ("block-storage", "cinder", "/volume/v3/{project_id}"),
        ("volumev3", "cinderv3", "/volume/v3/{project_id}"),
    ),
}


@dataclass(frozen=True)
class Endpoint:
    id: str
    interface: str  # public, internal or admin: all on the gateway's public URL
    region: str
    url: str


@dataclass(frozen=True)
class CatalogService:
    id: str
    type: str  # "compute", "block-storage", ...
    name: str  # "nova", "cinder", ...
    endpoints: tuple[Endpoint, ...]


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "stackling:" + ":".join(parts)).hex


def build_catalog(settings: GatewaySettings, project_id: str) -> list[CatalogService]:
    base = settings.public_url.rstrip("/")
    services = ["identity", *(name for name in ENTRIES if name in settings.service_urls())]
    catalog = []
    for service in services:
        for kind, name, path in ENTRIES[service]:
            url = base + path.format(project_id=project_id)
            endpoints = tuple(
                Endpoint(
                    id=_stable_id(settings.region, kind, interface),
                    interface=interface,
                    region=settings.region,
                    url=url,
                )
                for interface in INTERFACES
            )
            catalog.append(CatalogService(_stable_id(kind), kind, name, endpoints))
    return catalog
