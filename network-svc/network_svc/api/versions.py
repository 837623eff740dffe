"""Version discovery for Networking v2.0, readable without a token (as the gateway lets it).

GET /       -> 200 {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [self]}]}
GET /v2.0/  -> 200 {"resources": [{"name": "network", "collection": "networks", "links"}]}

Neutron answers its root with 200 (not 300, as other services do) and its version root
with the core resources it serves; every link is on the gateway's public URL and prefix.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from common_rpc.chassis.links import public_url
from common_rpc.chassis.versions import link

PUBLIC_PATHS = ("/", "/v2.0", "/v2.0/")

# Neutron's core resources (its /v2.0/ lists these); subnetpools are not served here.
CORE = (("network", "networks"), ("subnet", "subnets"), ("port", "ports"))

router = APIRouter(tags=["versions"])


@router.get("/")
async def versions(request: Request) -> dict[str, Any]:
    doc = {"id": "v2.0", "status": "CURRENT", "links": [link(request, "/v2.0/")]}
    return {"versions": [doc]}


@router.get("/v2.0")
@router.get("/v2.0/")
async def version_root(request: Request) -> dict[str, Any]:
    return {
        "resources": [
            {
                "name": name,
                "collection": collection,
                "links": [{"rel": "self", "href": public_url(request, f"/v2.0/{collection}")}],
            }
            for name, collection in CORE
        ]
    }
