"""Version discovery for Networking v2.0, readable without a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from common_rpc.chassis.versions import link

PUBLIC_PATHS = ("/",)

router = APIRouter(tags=["versions"])


@router.get("/")
async def versions(request: Request) -> dict[str, Any]:
    doc = {"id": "v2.0", "status": "CURRENT", "links": [link(request, "/v2.0/")]}
    return {"versions": [doc]}
