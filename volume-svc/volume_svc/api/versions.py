"""Version discovery for Block Storage v3, readable without a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from common_rpc.chassis.versions import link

PUBLIC_PATHS = ("/", "/v3", "/v3/")

router = APIRouter(tags=["versions"])


@router.get("/")
@router.get("/v3")
@router.get("/v3/")
async def versions(request: Request) -> dict[str, Any]:
    doc = {
        "id": "v3.0",
        "status": "CURRENT",
        "version": "3.0",
        "min_version": "3.0",
        "updated": "2023-01-01T00:00:00Z",
        "links": [link(request, "/v3/")],
    }
    return {"versions": [doc]}
