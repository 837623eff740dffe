"""The catalog's rows: ``/v3/regions``, ``/v3/services`` and ``/v3/endpoints`` (admin; any
token may read regions, as in Keystone). Scoped tokens carry what these hold.

    POST   /v3/regions   {"region": {"id": "RegionTwo", "parent_region_id": "RegionOne"}} -> 201
    PUT    /v3/regions/RegionTwo {"region": {}}     -> 201 (the id from the path)
    GET    /v3/regions[?parent_region_id=]          GET|PATCH|DELETE /v3/regions/{id}
    POST   /v3/services  {"service": {"type": "dns", "name": "designate"}}              -> 201
    GET    /v3/services[?type=&name=]               GET|PATCH|DELETE /v3/services/{id}
    POST   /v3/endpoints {"endpoint": {"service_id": S, "interface": "public",
                                       "url": "http://gw/dns", "region_id": "RegionOne"}} -> 201
    GET    /v3/endpoints[?interface=&service_id=&region_id=]
    GET|PATCH|DELETE /v3/endpoints/{id}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ..domain import regions, services
from ..domain.auth import AuthContext
from ..domain.schemas import RegionCreate
from ..wiring import Deps
from .common import Access
from .schemas import (
    EndpointCreateBody,
    EndpointUpdateBody,
    RegionCreateBody,
    RegionUpdateBody,
    ServiceCreateBody,
    ServiceUpdateBody,
)
from .views import Links, collection, endpoint_view, region_view, service_view


def catalog_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    access = Access(deps.tokens)
    admin, caller = access.admin, access.caller
    links = Links(deps.settings.public_url)

    # --- regions ------------------------------------------------------------------------------

    @router.post("/v3/regions", status_code=201)
    async def create_region(
        body: RegionCreateBody,
        _auth: AuthContext = Depends(admin("identity:create_region")),
    ) -> dict[str, Any]:
        return {"region": region_view(await regions.create_region(deps, body.region), links)}

    @router.put("/v3/regions/{region_id}", status_code=201)
    async def create_region_with_id(
        region_id: str,
        body: RegionCreateBody | None = None,
        _auth: AuthContext = Depends(admin("identity:create_region")),
    ) -> dict[str, Any]:
        spec = body.region if body is not None else RegionCreate()
        region = await regions.create_region(deps, spec, region_id=region_id)
        return {"region": region_view(region, links)}

    @router.get("/v3/regions")
    async def list_regions(
        request: Request,
        _auth: AuthContext = Depends(caller),
        parent_region_id: str | None = None,
    ) -> dict[str, Any]:
        found = await regions.list_regions(deps, parent_region_id=parent_region_id)
        views = [region_view(r, links) for r in found]
        return collection("regions", views, links.collection(request))

    @router.get("/v3/regions/{region_id}")
    async def show_region(region_id: str, _auth: AuthContext = Depends(caller)) -> dict[str, Any]:
        return {"region": region_view(await regions.get_region(deps, region_id), links)}

    @router.patch("/v3/regions/{region_id}")
    async def update_region(
        region_id: str,
        body: RegionUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_region")),
    ) -> dict[str, Any]:
        region = await regions.update_region(deps, region_id, body.region)
        return {"region": region_view(region, links)}

    @router.delete("/v3/regions/{region_id}", status_code=204)
    async def delete_region(
        region_id: str, _auth: AuthContext = Depends(admin("identity:delete_region"))
    ) -> Response:
        await regions.delete_region(deps, region_id)
        return Response(status_code=204)

    # --- services -----------------------------------------------------------------------------

    @router.post("/v3/services", status_code=201)
    async def create_service(
        body: ServiceCreateBody,
        _auth: AuthContext = Depends(admin("identity:create_service")),
    ) -> dict[str, Any]:
        return {"service": service_view(await services.create_service(deps, body.service), links)}

    @router.get("/v3/services")
    async def list_services(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_services")),
        type: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        found = await services.list_services(deps, type=type, name=name)
        views = [service_view(s, links) for s in found]
        return collection("services", views, links.collection(request))

    @router.get("/v3/services/{service_id}")
    async def show_service(
        service_id: str, _auth: AuthContext = Depends(admin("identity:get_service"))
    ) -> dict[str, Any]:
        return {"service": service_view(await services.get_service(deps, service_id), links)}

    @router.patch("/v3/services/{service_id}")
    async def update_service(
        service_id: str,
        body: ServiceUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_service")),
    ) -> dict[str, Any]:
        service = await services.update_service(deps, service_id, body.service)
        return {"service": service_view(service, links)}

    @router.delete("/v3/services/{service_id}", status_code=204)
    async def delete_service(
        service_id: str, _auth: AuthContext = Depends(admin("identity:delete_service"))
    ) -> Response:
        await services.delete_service(deps, service_id)
        return Response(status_code=204)

    # --- endpoints ----------------------------------------------------------------------------

    @router.post("/v3/endpoints", status_code=201)
    async def create_endpoint(
        body: EndpointCreateBody,
        _auth: AuthContext = Depends(admin("identity:create_endpoint")),
    ) -> dict[str, Any]:
        endpoint = await services.create_endpoint(deps, body.endpoint)
        return {"endpoint": endpoint_view(endpoint, links)}

    @router.get("/v3/endpoints")
    async def list_endpoints(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_endpoints")),
        interface: str | None = None,
        service_id: str | None = None,
        region_id: str | None = None,
    ) -> dict[str, Any]:
        found = await services.list_endpoints(
            deps, interface=interface, service_id=service_id, region_id=region_id
        )
        views = [endpoint_view(e, links) for e in found]
        return collection("endpoints", views, links.collection(request))

    @router.get("/v3/endpoints/{endpoint_id}")
    async def show_endpoint(
        endpoint_id: str, _auth: AuthContext = Depends(admin("identity:get_endpoint"))
    ) -> dict[str, Any]:
        return {"endpoint": endpoint_view(await services.get_endpoint(deps, endpoint_id), links)}

    @router.patch("/v3/endpoints/{endpoint_id}")
    async def update_endpoint(
        endpoint_id: str,
        body: EndpointUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_endpoint")),
    ) -> dict[str, Any]:
        endpoint = await services.update_endpoint(deps, endpoint_id, body.endpoint)
        return {"endpoint": endpoint_view(endpoint, links)}

    @router.delete("/v3/endpoints/{endpoint_id}", status_code=204)
    async def delete_endpoint(
        endpoint_id: str, _auth: AuthContext = Depends(admin("identity:delete_endpoint"))
    ) -> Response:
        await services.delete_endpoint(deps, endpoint_id)
        return Response(status_code=204)

    return router
