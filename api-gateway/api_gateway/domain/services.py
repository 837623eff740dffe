"""Catalog services and their endpoints, managed by admins (Keystone's ``/v3/services`` and
``/v3/endpoints``); ``catalog.build_catalog`` reads them into every scoped token.

    service = await create_service(deps, ServiceCreate(type="dns", name="designate"))
    endpoint = await create_endpoint(deps, EndpointCreate(
        service_id=service.id, interface="public", url="http://gw/dns", region_id="RegionOne"))
    await delete_service(deps, service.id)       # its endpoints go with it

An endpoint's region is made when it does not exist yet, as Keystone does for clients that
name a region before creating it. A URL may name only the substitutions the catalog fills
in (``$(project_id)s``, ...): anything else is Keystone's 400, never a broken catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.chassis.db import try_insert
from common_rpc.errors import Invalid, NotFound

from ..db.models import Endpoint, Region, Service, new_id
from ..wiring import Deps
from .catalog import InvalidURL, check_endpoint_url
from .common import get_or_404, not_none
from .schemas import EndpointCreate, EndpointUpdate, ServiceCreate, ServiceUpdate


def _check_url(url: str) -> None:
    try:
        check_endpoint_url(url)
    except InvalidURL:
        raise Invalid(f"Cannot create an endpoint with an invalid URL: {url}.") from None


def _refuse_id_change(changes: dict[str, Any], row_id: str) -> None:
    if changes.pop("id", None) not in (None, row_id):
        raise Invalid("Cannot change ID")


# --- services ---------------------------------------------------------------------------------


async def create_service(deps: Deps, spec: ServiceCreate) -> Service:
    service = Service(
        id=new_id(),
        type=spec.type,
        name=spec.name or "",
        description=spec.description,
        enabled=spec.enabled,
    )
    async with deps.sessions.begin() as session:
        session.add(service)
    return service


async def list_services(
    deps: Deps, *, type: str | None = None, name: str | None = None
) -> list[Service]:
    query = select(Service).order_by(Service.type, Service.id)
    if type is not None:
        query = query.where(Service.type == type)
    if name is not None:
        query = query.where(Service.name == name)
    async with deps.sessions() as session:
        return list((await session.scalars(query)).all())


async def get_service(deps: Deps, service_id: str) -> Service:
    async with deps.sessions() as session:
        return await get_or_404(session, Service, service_id, "service")


async def update_service(deps: Deps, service_id: str, spec: ServiceUpdate) -> Service:
    changes = spec.model_dump(include=spec.model_fields_set)
    _refuse_id_change(changes, service_id)
    not_none(changes, "type", "enabled")
    if "name" in changes:
        changes["name"] = changes["name"] or ""
    async with deps.sessions.begin() as session:
        service = await get_or_404(session, Service, service_id, "service")
        for key, value in changes.items():
            setattr(service, key, value)
    return service


async def delete_service(deps: Deps, service_id: str) -> None:
    async with deps.sessions.begin() as session:
        # Its endpoints go by ON DELETE CASCADE, as Keystone deletes them with it.
        result = await session.execute(delete(Service).where(Service.id == service_id))
    if not result.rowcount:
        raise NotFound(f"Could not find service: {service_id}.")


# --- endpoints --------------------------------------------------------------------------------


async def _ensure_region(session: AsyncSession, region_id: str | None) -> None:
    if region_id is not None and await session.get(Region, region_id) is None:
        await try_insert(session, Region(id=region_id, description="", parent_region_id=None))


async def _require_service(session: AsyncSession, service_id: str) -> None:
    if await session.get(Service, service_id) is None:
        raise NotFound(f"Could not find service: {service_id}.")


def _region_of(fields: Mapping[str, Any]) -> str | None:
    """``region_id``, or the older ``region`` attribute when only that is given."""
    region_id, legacy = fields.get("region_id"), fields.get("region")
    if region_id is not None and legacy is not None and region_id != legacy:
        raise Invalid("Conflicting region_id and region values.")
    return region_id if region_id is not None else legacy


async def create_endpoint(deps: Deps, spec: EndpointCreate) -> Endpoint:
    _check_url(spec.url)
    endpoint = Endpoint(
        id=new_id(),
        service_id=spec.service_id,
        region_id=_region_of(spec.model_dump()),
        interface=spec.interface,
        url=spec.url,
        enabled=spec.enabled,
    )
    async with deps.sessions.begin() as session:
        await _require_service(session, spec.service_id)
        await _ensure_region(session, endpoint.region_id)
        session.add(endpoint)
    return endpoint


async def list_endpoints(
    deps: Deps,
    *,
    interface: str | None = None,
    service_id: str | None = None,
    region_id: str | None = None,
) -> list[Endpoint]:
    query = select(Endpoint).order_by(Endpoint.service_id, Endpoint.interface, Endpoint.id)
    if interface is not None:
        query = query.where(Endpoint.interface == interface)
    if service_id is not None:
        query = query.where(Endpoint.service_id == service_id)
    if region_id is not None:
        query = query.where(Endpoint.region_id == region_id)
    async with deps.sessions() as session:
        return list((await session.scalars(query)).all())


async def get_endpoint(deps: Deps, endpoint_id: str) -> Endpoint:
    async with deps.sessions() as session:
        return await get_or_404(session, Endpoint, endpoint_id, "endpoint")


async def update_endpoint(deps: Deps, endpoint_id: str, spec: EndpointUpdate) -> Endpoint:
    changes = spec.model_dump(include=spec.model_fields_set)
    _refuse_id_change(changes, endpoint_id)
    not_none(changes, "interface", "service_id", "url", "enabled")
    if "url" in changes:
        _check_url(changes["url"])
    if "region_id" in changes or "region" in changes:
        changes["region_id"] = _region_of(changes)
    changes.pop("region", None)
    async with deps.sessions.begin() as session:
        endpoint = await get_or_404(session, Endpoint, endpoint_id, "endpoint")
        if "service_id" in changes:
            await _require_service(session, changes["service_id"])
        await _ensure_region(session, changes.get("region_id"))
        for key, value in changes.items():
            setattr(endpoint, key, value)
    return endpoint


async def delete_endpoint(deps: Deps, endpoint_id: str) -> None:
    async with deps.sessions.begin() as session:
        result = await session.execute(delete(Endpoint).where(Endpoint.id == endpoint_id))
    if not result.rowcount:
        raise NotFound(f"Could not find endpoint: {endpoint_id}.")
