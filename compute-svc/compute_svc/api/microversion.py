"""Compute speaks the base microversion 2.1: say so on every answer, refuse higher.

OpenStack-API-Version: compute 2.1      (also X-OpenStack-Nova-API-Version: 2.1)
-> 406 for "compute 2.60"; "latest" means 2.1; the answer echoes the version and
   carries Vary, as Nova's does.

A few routes also answer the later shapes Nova gave them, for a client that asks for
them by number (``ROUTE_MAX``): ``os-server-groups`` up to 2.64 (``policy`` and
``rules``), ``os-services`` up to 2.53 (``PUT /os-services/{id}``). The version
document still says 2.1, since every other route answers 2.1 only, so a client that
negotiates stays at 2.1 everywhere. The version a request is served at is
``request.state.microversion`` (a tuple); ``version_of(request)`` reads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from common_rpc.chassis.faults import nova_fault

VERSION = "2.1"
BASE = (2, 1)
# Routes (path prefixes) served at later microversions too, and their highest.
ROUTE_MAX = {
    "/v2.1/os-server-groups": (2, 64),
    "/v2.1/os-services": (2, 53),
}
HEADERS = {
    "OpenStack-API-Version": f"compute {VERSION}",
    "X-OpenStack-Nova-API-Version": VERSION,
    "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
}


def requested(request: Request) -> str | None:
    """The version asked for, if any: ``"2.60"``, ``"latest"``."""
    header = request.headers.get("openstack-api-version", "")
    for part in header.split(","):
        service, _, version = part.strip().partition(" ")
        if service.lower() == "compute" and version:
            return version.strip()
    return request.headers.get("x-openstack-nova-api-version") or None


def highest(path: str) -> tuple[int, int]:
    """The highest microversion ``path`` is served at."""
    for prefix, top in ROUTE_MAX.items():
        if path == prefix or path.startswith(prefix + "/"):
            return top
    return BASE


def parse(version: str, top: tuple[int, int] = BASE) -> tuple[int, int] | None:
    """``"2.53"`` as (2, 53) if served (``latest`` is ``top``); None otherwise."""
    if version.lower() == "latest":
        return top
    major, _, minor = version.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return None
    wanted = (int(major), int(minor))
    return wanted if BASE <= wanted <= top else None


def acceptable(version: str) -> bool:
    return parse(version) is not None


def version_of(request: Request) -> tuple[int, int]:
    """The microversion the request is served at (2.1 unless its route serves more)."""
    return getattr(request.state, "microversion", BASE)


def shown(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def microversion(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith("/v2.1"):
            return await call_next(request)
        version = requested(request)
        top = highest(request.url.path)
        served = parse(version, top) if version is not None else BASE
        if served is None:
            message = (
                f"Version {version} is not supported by the API. Minimum is 2.1 and "
                f"maximum is {shown(top)}."
            )
            response: Response = JSONResponse(nova_fault(406, message), status_code=406)
        else:
            request.state.microversion = served
            response = await call_next(request)
        response.headers.update(HEADERS)
        if served is not None and served != BASE:
            response.headers["OpenStack-API-Version"] = f"compute {shown(served)}"
            response.headers["X-OpenStack-Nova-API-Version"] = shown(served)
        response.headers["X-Compute-Request-Id"] = response.headers.get(
            "X-Openstack-Request-Id", ""
        )
        return response
