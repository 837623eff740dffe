"""Keystone's JSON shapes for projects, users, roles, grants, the domain, tokens, the catalog
and its regions, services and endpoints.

    links = Links(settings.public_url)
    project_view(project, links)   # {"id", "name", ..., "links": {"self": ".../v3/projects/ID"}}
    collection("projects", [..], links.collection(request))
    # {"projects": [..], "links": {"self": URL, "next": None, "previous": None}}

Every link is absolute and built on the gateway's public URL, never on the Host header.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request

from ..db.models import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    Endpoint,
    Group,
    Project,
    Region,
    Role,
    Service,
    User,
)
from ..domain.app_credentials import Credential
from ..domain.assignments import Assignment
from ..domain.catalog import CatalogService
from ..domain.tokens import TokenInfo

DOMAIN_REF = {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME}


class Links:
    """Absolute URLs under ``<public_url>/identity/v3``."""

    def __init__(self, public_url: str) -> None:
        self.base = public_url.rstrip("/") + "/identity/v3"

    def of(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def collection(self, request: Request) -> dict[str, str | None]:
        # The path below /v3 as routed, plus the query the client sent.
        path = request.url.path.split("/v3", 1)[-1]
        query = f"?{request.url.query}" if request.url.query else ""
        return {"self": self.base + path + query, "next": None, "previous": None}


def timestamp(value: datetime) -> str:
    """Keystone's form: ``2024-05-01T12:00:00.000000Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def collection(
    name: str, items: list[dict[str, Any]], links: dict[str, str | None]
) -> dict[str, Any]:
    return {name: items, "links": links}


def project_view(project: Project, links: Links) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "domain_id": project.domain_id,
        "description": project.description,
        "enabled": project.enabled,
        "is_domain": False,
        # Keystone's top-level projects have their domain as parent.
        "parent_id": project.domain_id,
        "tags": [],
        "options": {},
        "links": {"self": links.of("projects", project.id)},
    }


def user_view(user: User, links: Links, *, locked_until: datetime | None = None) -> dict[str, Any]:
    """A user as Keystone shows it; the password (or its hash) is never part of it.

    ``locked_until``: while a lockout holds the user, when it ends, shown among the options
    next to Keystone's ``ignore_lockout_failure_attempts`` (Keystone itself only refuses;
    the options are what ``openstack user show`` prints, unknown top-level attributes are
    dropped by openstacksdk). It is read-only: an update that sends it back is ignored.
    """
    options: dict[str, Any] = {}
    if user.ignore_lockout is not None:
        options["ignore_lockout_failure_attempts"] = user.ignore_lockout
    if locked_until is not None:
        options["locked_until"] = timestamp(locked_until)
    view: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "domain_id": user.domain_id,
        "enabled": user.enabled,
        "password_expires_at": None,
        "options": options,
        "links": {"self": links.of("users", user.id)},
    }
    # Keystone leaves optional attributes out rather than showing them null.
    for key in ("default_project_id", "email", "description"):
        value = getattr(user, key)
        if value is not None:
            view[key] = value
    return view


def role_view(role: Role, links: Links) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "domain_id": None,
        "description": role.description,
        # Keystone lists an option once it was set.
        "options": {} if role.immutable is None else {"immutable": role.immutable},
        "links": {"self": links.of("roles", role.id)},
    }


def group_view(group: Group, links: Links) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "domain_id": group.domain_id,
        "description": group.description or "",
        "links": {"self": links.of("groups", group.id)},
    }


def domain_view(links: Links) -> dict[str, Any]:
    return {
        **DOMAIN_REF,
        "description": "The default domain",
        "enabled": True,
        "tags": [],
        "options": {},
        "links": {"self": links.of("domains", DEFAULT_DOMAIN_ID)},
    }


def assignment_view(item: Assignment, links: Links, *, names: bool) -> dict[str, Any]:
    """One of ``GET /v3/role_assignments``; ``names`` adds the names (``include_names``)."""
    role: dict[str, Any] = {"id": item.role_id}
    project: dict[str, Any] = {"id": item.project_id}
    if names:
        role["name"] = item.role_name
        project.update(name=item.project_name, domain=DOMAIN_REF)
    view: dict[str, Any] = {"role": role}
    if item.user_id is not None:
        view["user"] = {"id": item.user_id}
        if names:
            view["user"].update(name=item.user_name, domain=DOMAIN_REF)
    else:
        view["group"] = {"id": item.group_id}
        if names:
            view["group"].update(name=item.group_name, domain=DOMAIN_REF)
    view["scope"] = {"project": project}
    # The grant it comes from: the group's for a role held through a group.
    actor = (
        f"groups/{item.via_group_id}"
        if item.via_group_id is not None
        else (f"users/{item.user_id}" if item.user_id is not None else f"groups/{item.group_id}")
    )
    granted = item.prior_role_id or item.role_id
    view_links = {"assignment": links.of(f"projects/{item.project_id}/{actor}/roles/{granted}")}
    if item.via_group_id is not None:
        view_links["membership"] = links.of("groups", item.via_group_id, "users", str(item.user_id))
    if item.prior_role_id is not None:
        view_links["prior_role"] = links.of("roles", item.prior_role_id)
    view["links"] = view_links
    return view


def region_view(region: Region, links: Links) -> dict[str, Any]:
    return {
        "id": region.id,
        "description": region.description,
        "parent_region_id": region.parent_region_id,
        "links": {"self": links.of("regions", region.id)},
    }


def service_view(service: Service, links: Links) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": service.id,
        "type": service.type,
        "enabled": service.enabled,
        "links": {"self": links.of("services", service.id)},
    }
    # Keystone keeps name and description as extra attributes: absent until set.
    if service.name:
        view["name"] = service.name
    if service.description is not None:
        view["description"] = service.description
    return view


def endpoint_view(endpoint: Endpoint, links: Links) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "interface": endpoint.interface,
        # ``region`` is Keystone v3.0's name for it; both are shown, as Keystone does.
        "region": endpoint.region_id,
        "region_id": endpoint.region_id,
        "service_id": endpoint.service_id,
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "links": {"self": links.of("endpoints", endpoint.id)},
    }


def credential_view(
    credential: Credential, links: Links, *, secret: str | None = None
) -> dict[str, Any]:
    """An application credential; ``secret`` only in the create's answer (shown once)."""
    row = credential.row
    view: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "user_id": row.user_id,
        "project_id": row.project_id,
        "expires_at": timestamp(row.expires_at) if row.expires_at is not None else None,
        "unrestricted": row.unrestricted,
        "roles": [{"id": r.id, "name": r.name, "domain_id": None} for r in credential.roles],
        "access_rules": [],
        "links": {"self": links.of("users", row.user_id, "application_credentials", row.id)},
    }
    if secret is not None:
        view["secret"] = secret
    return view


def catalog_view(catalog: list[CatalogService]) -> list[dict[str, Any]]:
    return [
        {
            "id": service.id,
            "type": service.type,
            "name": service.name,
            "endpoints": [
                {
                    "id": endpoint.id,
                    "interface": endpoint.interface,
                    "region": endpoint.region,
                    "region_id": endpoint.region,
                    "url": endpoint.url,
                }
                for endpoint in service.endpoints
            ],
        }
        for service in catalog
    ]


def token_body(info: TokenInfo, catalog: list[CatalogService] | None) -> dict[str, Any]:
    """``{"token": {...}}``; project, roles and catalog only for a project-scoped token."""
    audit_ids = [info.audit_id] + ([info.audit_chain_id] if info.audit_chain_id else [])
    token: dict[str, Any] = {
        "methods": list(info.methods),
        "user": {
            "id": info.user_id,
            "name": info.user_name,
            "domain": DOMAIN_REF,
            "password_expires_at": None,
        },
        "audit_ids": audit_ids,
        "issued_at": timestamp(info.issued_at),
        "expires_at": timestamp(info.expires_at),
    }
    if info.project_id is not None:
        token["project"] = {"id": info.project_id, "name": info.project_name, "domain": DOMAIN_REF}
        token["is_domain"] = False
        token["roles"] = [{"id": role.id, "name": role.name} for role in info.roles]
        if catalog is not None:
            token["catalog"] = catalog_view(catalog)
    credential = info.application_credential
    if credential is not None:
        token["application_credential"] = {
            "id": credential.id,
            "name": credential.name,
            "restricted": credential.restricted,
        }
    return {"token": token}
