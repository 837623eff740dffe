"""Version discovery: what keystoneauth reads before it authenticates (no token needed).

    GET /identity      -> 300 {"versions": {"values": [<v3>]}}
    GET /identity/v3   -> 200 {"version": <v3>}

The ``self`` link is absolute and built on ``settings.public_url``: clients use it as
the base of every later call.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..settings import GatewaySettings

VERSION_ID = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"


def v3_document(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": settings.public_url.rstrip("/") + "/identity/v3/"}],
        "media-types": [{"base": "application/json", "type": MEDIA_TYPE}],
    }


def versions_router(settings: GatewaySettings) -> APIRouter:
    """Routes relative to the identity prefix: "" is ``/identity`` itself."""
    router = APIRouter(tags=["identity"])

    @router.get("")
    @router.get("/")
    async def versions() -> JSONResponse:
        # 300 Multiple Choices, as Keystone answers on its root.
        return JSONResponse({"versions": {"values": [v3_document(settings)]}}, status_code=300)

    @router.get("/v3")
    @router.get("/v3/")
    async def version_v3() -> dict[str, Any]:
        return {"version": v3_document(settings)}

    return router
