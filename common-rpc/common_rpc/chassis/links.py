"""Links a client can follow: on the gateway's public URL and prefix, never a replica's.

Behind the gateway, ``GET http://GW/volume/v3/p1/volumes`` reaches a replica as
``/v3/p1/volumes`` with ``X-Forwarded-Proto: http``, ``X-Forwarded-Host: GW`` and
``X-Forwarded-Prefix: /volume`` (``api_gateway.api.proxy`` sets them and drops any a
client sent). Every link a service writes into a body (``self``, ``bookmark``, a
list's ``next``, version documents) is built here from those headers, so following it
goes through the gateway again. A service called directly (tests, operators) gets
links on the address it was called at.

    public_base(request)                      # "http://GW/volume"
    public_url(request, "/v3/p1/volumes/v1")  # "http://GW/volume/v3/p1/volumes/v1"
    next_link(request, "v9")                  # this request's URL with marker=v9:
    # {"rel": "next", "href": "http://GW/volume/v3/p1/volumes?limit=1&marker=v9"}
    previous_link(request, "v1", add={"page_reverse": "True"})  # rel "previous"
"""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.requests import Request

_SCHEMES = ("http", "https")


def public_base(request: Request) -> str:
    """The URL clients use for this service's root, without a trailing slash."""
    headers = request.headers
    host = headers.get("x-forwarded-host", "").strip()
    if not host or any(c in host for c in "/ \t\\?#@"):
        return str(request.base_url).rstrip("/")
    proto = headers.get("x-forwarded-proto", "http").strip().lower()
    prefix = headers.get("x-forwarded-prefix", "").strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return f"{proto if proto in _SCHEMES else 'http'}://{host}{prefix}"


def public_url(request: Request, path: str | None = None) -> str:
    """``path`` (default: this request's path, without its query) on the public base."""
    return public_base(request) + (request.url.path if path is None else path)


def _paged_link(
    request: Request, rel: str, marker: str | None, drop: tuple[str, ...], add: dict[str, str]
) -> dict[str, str]:
    query = request.url.query
    url = URL(public_url(request) + (f"?{query}" if query else ""))
    url = url.remove_query_params(("marker", *drop, *add))
    extra = ({"marker": marker} if marker is not None else {}) | add
    return {"rel": rel, "href": str(url.include_query_params(**extra)) if extra else str(url)}


def next_link(
    request: Request, marker: str | None, *, drop: tuple[str, ...] = ()
) -> dict[str, str]:
    """The ``next`` link of a paged list: this request's public URL and query, with
    ``marker`` replaced (every other parameter, ``limit`` included, kept as sent, but
    those in ``drop``; no marker when None, as an empty page's links have none)."""
    return _paged_link(request, "next", marker, drop, {})


def previous_link(
    request: Request, marker: str | None, *, add: dict[str, str] | None = None
) -> dict[str, str]:
    """The ``previous`` link: as ``next_link``, with ``add``'s parameters set (Neutron's
    ``page_reverse=True``, which pages backwards from the marker)."""
    return _paged_link(request, "previous", marker, (), dict(add or {}))
