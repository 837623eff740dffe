"""The service catalog a project-scoped token carries (and ``GET /v3/auth/catalog``).

    build_catalog(settings, project_id)
    # [{"id": "...", "type": "identity", "name": "keystone",
    #   "endpoints": [{"id", "interface": "public", "region": "RegionOne",
    #                  "region_id": "RegionOne", "url": "http://GW/identity"}, ...]}, ...]

Identity is always listed; compute (which also serves images), network and volume only
when the deployment configures their API replicas (``settings.service_urls()``). Every
URL is on the gateway's ``public_url``: clients only ever talk to the gateway. Ids are
derived from the entry, so every replica hands out the same catalog.
"""

from __future__ import annotations

import uuid
from typing import Any

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


def _stable_id(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "stackling:" + ":".join(parts)).hex


def build_catalog(settings: GatewaySettings, project_id: str) -> list[dict[str, Any]]:
    base = settings.public_url.rstrip("/")
    services = ["identity", *(name for name in ENTRIES if name in settings.service_urls())]
    catalog = []
    for service in services:
        for kind, name, path in ENTRIES[service]:
            url = base + path.format(project_id=project_id)
            endpoints = [
                {
                    "id": _stable_id(settings.region, kind, interface),
                    "interface": interface,
                    "region": settings.region,
                    "region_id": settings.region,
                    "url": url,
                }
                for interface in INTERFACES
            ]
            catalog.append(
                {"id": _stable_id(kind), "type": kind, "name": name, "endpoints": endpoints}
            )
    return catalog
