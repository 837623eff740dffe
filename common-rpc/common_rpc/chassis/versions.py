"""Where clients reach a service, for the links in its version documents.

Behind the gateway a service lives at ``http://GW/network``; the proxy says so in
``X-Forwarded-Proto``/``-Host``/``-Prefix``. Version documents must carry absolute links
clients can follow (openstacksdk builds its base URL from them).

    @router.get("/")
    async def versions(request: Request) -> dict:
        return {"versions": [{"id": "v2.0", "links": [link(request, "/v2.0/")]}]}
"""

from __future__ import annotations

from fastapi import Request


def external_base(request: Request) -> str:
    """The URL clients use for this service's root, without a trailing slash."""
    headers = request.headers
    host = headers.get("x-forwarded-host")
    if host:
        proto = headers.get("x-forwarded-proto", "http")
        return f"{proto}://{host}{headers.get('x-forwarded-prefix', '')}".rstrip("/")
    return str(request.base_url).rstrip("/")


def link(request: Request, path: str, rel: str = "self") -> dict[str, str]:
    return {"rel": rel, "href": external_base(request) + path}
