"""Compute speaks only the base microversion 2.1: say so on every answer, refuse higher.

OpenStack-API-Version: compute 2.1      (also X-OpenStack-Nova-API-Version: 2.1)
-> 406 for "compute 2.60"; "latest" means 2.1; the answer echoes the version and
   carries Vary, as Nova's does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from common_rpc.chassis.faults import nova_fault

VERSION = "2.1"
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


def acceptable(version: str) -> bool:
    if version.lower() == "latest":
        return True
    major, _, minor = version.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return False
    return (int(major), int(minor)) <= (2, 1) and (int(major), int(minor)) >= (2, 1)


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def microversion(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith("/v2.1"):
            return await call_next(request)
        version = requested(request)
        if version is not None and not acceptable(version):
            message = (
                f"Version {version} is not supported by the API. Minimum is 2.1 and maximum is 2.1."
            )
            response: Response = JSONResponse(nova_fault(406, message), status_code=406)
        else:
            response = await call_next(request)
        response.headers.update(HEADERS)
        response.headers["X-Compute-Request-Id"] = response.headers.get(
            "X-Openstack-Request-Id", ""
        )
        return response
