"""Domains: only ``default`` ("Default") exists; read-only.

    GET /v3/domains?name=Default   -> {"domains": [{"id": "default", "name": "Default", ..}]}
    GET /v3/domains/default        -> {"domain": {...}}; any other id -> 404
    DELETE /v3/domains/default     -> 403, Keystone's answer for an enabled domain

Listing is admin-only; any valid token may read the default domain (every user and
project belongs to it, as Keystone lets a user read its own domain).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..domain import domains
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access, query_flag
from .views import Links, collection, domain_view


def domains_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    access = Access(deps.tokens)
    links = Links(deps.settings.public_url)

    @router.get("/v3/domains")
    async def list_domains(
        request: Request,
        _auth: AuthContext = Depends(access.admin("identity:list_domains")),
        name: str | None = None,
        enabled: str | None = None,
    ) -> dict[str, Any]:
        matches = domains.domain_matches(name=name, enabled=query_flag(enabled))
        views = [domain_view(links)] if matches else []
        return collection("domains", views, links.collection(request))

    @router.get("/v3/domains/{domain_id}")
    async def show_domain(
        domain_id: str, _auth: AuthContext = Depends(access.caller)
    ) -> dict[str, Any]:
        domains.get_domain(domain_id)
        return {"domain": domain_view(links)}

    @router.delete("/v3/domains/{domain_id}", status_code=204)
    async def delete_domain(
        domain_id: str,
        _auth: AuthContext = Depends(access.admin("identity:delete_domain")),
    ) -> None:
        domains.delete_domain(domain_id)

    return router
