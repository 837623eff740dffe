"""Version discovery for Block Storage v3, readable without a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from common_rpc.chassis.versions import link

PUBLIC_PATHS = ("/", "/v3", "/v3/")

router = APIRouter(tags=["versions"])


MEDIA_TYPES = [
    {"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}
]


def _v3(request: Request) -> dict[str, Any]:
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": "3.0",
        "min_version": "3.0",
        "updated": "2023-01-01T00:00:00Z",
        "links": [link(request, "/v3/")],
        "media-types": MEDIA_TYPES,
    }


@router.get("/", status_code=300)
async def versions(request: Request) -> dict[str, Any]:
    """The root: Cinder's 300 Multiple Choices, the one version served."""
    return {"versions": [_v3(request)]}


@router.get("/v3")
@router.get("/v3/")
async def version(request: Request) -> dict[str, Any]:
    """The version root: 200, the same document."""
    return {"versions": [_v3(request)]}
