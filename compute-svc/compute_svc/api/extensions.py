"""``/v2.1/extensions``: Nova's list of the API extensions this compute API serves.

An extension is listed only when a route of its collection is served by this app, so
the list follows the routers ``app.py`` mounts (an API not served is never announced).
Entries have Nova's 2.1 shape (its fixed namespace and ``updated``; no links); this
router comes before the chassis' generic ``/extensions``, whose entries have no
``namespace``, which Nova's schema requires.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from common_rpc.errors import NotFound

router = APIRouter(prefix="/v2.1/extensions", tags=["extensions"])
NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"
UPDATED = "2014-12-03T00:00:00Z"
V21 = "/v2.1"
# (alias, name, description, a path whose route being served shows it is)
KNOWN: tuple[tuple[str, str, str, str], ...] = (
    ("extensions", "Extensions", "Extension information.", "/extensions"),
    ("flavors", "Flavors", "Flavors Extension.", "/flavors"),
    ("os-flavor-manage", "FlavorManage", "Flavor create/delete API support.", "/flavors"),
    ("os-flavor-access", "FlavorAccess", "Flavor access support.",
     "/flavors/{flavor_id}/os-flavor-access"),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support.",
     "/flavors/{flavor_id}/os-extra_specs"),
    ("servers", "Servers", "Servers.", "/servers"),
    ("ips", "Ips", "Server addresses.", "/servers/{server_id}/ips"),
    ("server-metadata", "ServerMetadata", "Server metadata Support.",
     "/servers/{server_id}/metadata"),
    ("os-attach-interfaces", "AttachInterfaces", "Attach interface support.",
     "/servers/{server_id}/os-interface"),
    ("os-volumes", "Volumes", "Volumes support.", "/servers/{server_id}/os-volume_attachments"),
    ("os-instance-actions", "InstanceActions", "View a log of actions and events taken on an "
     "instance.", "/servers/{server_id}/os-instance-actions"),
    ("images", "Images", "Proxying API for Images.", "/images"),
    ("os-keypairs", "Keypairs", "Keypair Support.", "/os-keypairs"),
    ("limits", "Limits", "Limits support.", "/limits"),
    ("os-availability-zone", "AvailabilityZone", "1. Add availability_zone to the Create "
     "Server API.\n2. Add availability zones describing.", "/os-availability-zone"),
    ("os-quota-sets", "Quotas", "Quotas management support.", "/os-quota-sets/{project_id}"),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension.",
     "/os-simple-tenant-usage"),
    ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration.",
     "/os-hypervisors"),
    ("os-services", "Services", "Services support.", "/os-services"),
    ("os-aggregates", "Aggregates", "Admin-only aggregate administration.", "/os-aggregates"),
    ("os-server-groups", "ServerGroups", "Server group support.", "/os-server-groups"),
    ("os-migrations", "Migrations", "Provide data on migrations.", "/os-migrations"),
    ("versions", "Versions", "API Version information.", ""),  # served: /v2.1
)  # fmt: skip


def _view(alias: str, name: str, description: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "namespace": NAMESPACE,
        "updated": UPDATED,
        "links": [],
    }


def _shape(path: str) -> str:
    """A route's path with its parameters unnamed: ``/servers/{}/ips``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def served(request: Request) -> list[dict[str, Any]]:
    """The known extensions whose route this app serves, and those loaded as plugins
    (``settings.extensions``, which the chassis mounted), sorted by alias. The app's
    OpenAPI document names every route it serves (built once, then cached by FastAPI)."""
    paths = {_shape(path) for path in request.app.openapi()["paths"]}
    found = [
        _view(alias, name, description)
        for alias, name, description, path in KNOWN
        if _shape(V21 + path) in paths
    ]
    for plugin in getattr(request.app.state, "extensions", []):
        found.append({**plugin.describe(), "namespace": NAMESPACE})
    return sorted(found, key=lambda e: e["alias"])


@router.get("")
async def nova_extensions(request: Request) -> dict[str, Any]:
    return {"extensions": served(request)}


@router.get("/{alias}")
async def nova_extension(request: Request, alias: str) -> dict[str, Any]:
    for extension in served(request):
        if extension["alias"] == alias:
            return {"extension": extension}
    raise NotFound(f"Extension {alias} could not be found.")
