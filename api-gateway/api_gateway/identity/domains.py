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

from common_rpc.errors import Forbidden, NotFound

from ..db.models import DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME
from ..domain.auth import AuthContext
from .deps import IdentityDeps
from .lookup import query_flag
from .views import collection, domain_view


def domains_router(deps: IdentityDeps) -> APIRouter:
    router = APIRouter()

    @router.get("/v3/domains")
    async def list_domains(
        request: Request,
        _auth: AuthContext = Depends(deps.access.admin("identity:list_domains")),
        name: str | None = None,
        enabled: str | None = None,
    ) -> dict[str, Any]:
        matches = (name is None or name == DEFAULT_DOMAIN_NAME) and query_flag(enabled) in (
            None,
            True,
        )
        views = [domain_view(deps.links)] if matches else []
        return collection("domains", views, deps.links.collection(request))

    @router.get("/v3/domains/{domain_id}")
    async def show_domain(
        domain_id: str, _auth: AuthContext = Depends(deps.access.caller)
    ) -> dict[str, Any]:
        if domain_id != DEFAULT_DOMAIN_ID:
            raise NotFound(f"Could not find domain: {domain_id}.")
        return {"domain": domain_view(deps.links)}

    @router.delete("/v3/domains/{domain_id}", status_code=204)
    async def delete_domain(
        domain_id: str,
        _auth: AuthContext = Depends(deps.access.admin("identity:delete_domain")),
    ) -> None:
        if domain_id != DEFAULT_DOMAIN_ID:
            raise NotFound(f"Could not find domain: {domain_id}.")
        # The one domain is enabled for good: Keystone's answer for an enabled domain.
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")

    return router
