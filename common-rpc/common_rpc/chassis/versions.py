"""Where clients reach a service, for the links in its version documents.

Behind the gateway a service lives at ``http://GW/network``; the proxy says so in
``X-Forwarded-Proto``/``-Host``/``-Prefix`` (read in ``links.public_base``). Version
documents must carry absolute links clients can follow (openstacksdk builds its base URL
from them).

    @router.get("/")
    async def versions(request: Request) -> dict:
        return {"versions": [{"id": "v2.0", "links": [link(request, "/v2.0/")]}]}
"""

from __future__ import annotations

from fastapi import Request

from .links import public_base

# The name this module gave ``public_base`` first; kept for callers written against it.
external_base = public_base


def link(request: Request, path: str, rel: str = "self") -> dict[str, str]:
    return {"rel": rel, "href": public_base(request) + path}
