"""Version discovery for Compute v2.1 and Image v2, readable without a token.

The base microversion only: openstacksdk and the openstack CLI work fully at 2.1.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from common_rpc.chassis.versions import link

UPDATED = "2013-07-23T11:33:21Z"
PUBLIC_PATHS = ("/", "/v2.1", "/v2.1/", "/image", "/image/", "/image/versions")

router = APIRouter(tags=["versions"])


def _v21(request: Request) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": "2.1",
        "min_version": "2.1",
        "updated": UPDATED,
        "links": [link(request, "/v2.1/")],
    }


@router.get("/")
async def versions(request: Request) -> dict[str, Any]:
    v20 = {
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [link(request, "/v2/")],
    }
    return {"versions": [v20, _v21(request)]}


@router.get("/v2.1")
@router.get("/v2.1/")
async def version(request: Request) -> dict[str, Any]:
    return {"version": _v21(request)}


@router.get("/image")
@router.get("/image/")
@router.get("/image/versions")
async def image_versions(request: Request) -> JSONResponse:
    doc = {"id": "v2.16", "status": "CURRENT", "links": [link(request, "/image/v2/")]}
    return JSONResponse({"versions": [doc]}, status_code=300)
