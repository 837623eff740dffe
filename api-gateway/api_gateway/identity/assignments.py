"""Role grants on projects and their listing (admin).

    PUT    /v3/projects/{p}/users/{u}/roles/{r}   -> 204 (granting twice is fine)
    HEAD   /v3/projects/{p}/users/{u}/roles/{r}   -> 204, or 404 when not granted
    DELETE /v3/projects/{p}/users/{u}/roles/{r}   -> 204, or 404 when not granted
    GET    /v3/projects/{p}/users/{u}/roles       -> {"roles": [..]} granted there
    GET    /v3/role_assignments?scope.project.id=P&user.id=U&role.id=R&include_names&effective

``effective`` adds the implied roles (admin brings member and reader), as Keystone's
role inference does. Only project grants to users exist: a group or domain filter
matches nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common_rpc.errors import Conflict, NotFound

from ..db.models import Project, Role, RoleAssignment, User
from ..domain.auth import AuthContext, effective_roles
from .deps import IdentityDeps
from .lookup import get_or_404, query_flag
from .views import DOMAIN_REF, collection, role_view

GRANT = "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"
# Filters that name something this service never grants on or to.
NEVER_MATCHING = ("group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to")


def assignment_not_found(project_id: str, user_id: str, role_id: str) -> NotFound:
    """Keystone's RoleAssignmentNotFound."""
    return NotFound(
        f"Could not find role assignment with role: {role_id}, user or group: {user_id}, "
        f"project, domain, or system: {project_id}."
    )


def assignments_router(deps: IdentityDeps) -> APIRouter:
    router = APIRouter()
    admin = deps.access.admin

    async def check_targets(project_id: str, user_id: str, role_id: str) -> None:
        async with deps.sessions() as session:
            await get_or_404(session, Project, project_id, "project")
            await get_or_404(session, User, user_id, "user")
            await get_or_404(session, Role, role_id, "role")

    def grant_row(project_id: str, user_id: str, role_id: str) -> Any:
        return select(RoleAssignment).where(
            RoleAssignment.project_id == project_id,
            RoleAssignment.user_id == user_id,
            RoleAssignment.role_id == role_id,
        )

    @router.get(GRANT.rsplit("/", 1)[0])
    async def list_grants(
        request: Request,
        project_id: str,
        user_id: str,
        _auth: AuthContext = Depends(admin("identity:list_grants")),
    ) -> dict[str, Any]:
        async with deps.sessions() as session:
            await get_or_404(session, Project, project_id, "project")
            await get_or_404(session, User, user_id, "user")
            roles = (
                await session.scalars(
                    select(Role)
                    .join(RoleAssignment, RoleAssignment.role_id == Role.id)
                    .where(
                        RoleAssignment.project_id == project_id,
                        RoleAssignment.user_id == user_id,
                    )
                    .order_by(Role.name)
                )
            ).all()
        views = [role_view(r, deps.links) for r in roles]
        return collection("roles", views, deps.links.collection(request))

    @router.put(GRANT, status_code=204)
    async def grant(
        project_id: str,
        user_id: str,
        role_id: str,
        _auth: AuthContext = Depends(admin("identity:create_grant")),
    ) -> Response:
        await check_targets(project_id, user_id, role_id)
        try:
            async with deps.sessions.begin() as session:
                session.add(RoleAssignment(project_id=project_id, user_id=user_id, role_id=role_id))
        except IntegrityError:
            # Already granted (the primary key), unless a target vanished meanwhile.
            async with deps.sessions() as session:
                if await session.scalar(grant_row(project_id, user_id, role_id)) is None:
                    raise Conflict("The grant could not be stored; try again.") from None
        return Response(status_code=204)

    @router.head(GRANT, status_code=204)
    async def check_grant(
        project_id: str,
        user_id: str,
        role_id: str,
        _auth: AuthContext = Depends(admin("identity:check_grant")),
    ) -> Response:
        async with deps.sessions() as session:
            if await session.scalar(grant_row(project_id, user_id, role_id)) is None:
                raise assignment_not_found(project_id, user_id, role_id)
        return Response(status_code=204)

    @router.delete(GRANT, status_code=204)
    async def revoke_grant(
        project_id: str,
        user_id: str,
        role_id: str,
        _auth: AuthContext = Depends(admin("identity:revoke_grant")),
    ) -> Response:
        async with deps.sessions.begin() as session:
            result = await session.execute(
                delete(RoleAssignment).where(
                    RoleAssignment.project_id == project_id,
                    RoleAssignment.user_id == user_id,
                    RoleAssignment.role_id == role_id,
                )
            )
        if not result.rowcount:
            raise assignment_not_found(project_id, user_id, role_id)
        deps.tokens.forget(user_id)  # the user's tokens lose the role at once here
        return Response(status_code=204)

    @router.get("/v3/role_assignments")
    async def list_assignments(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_role_assignments")),
    ) -> dict[str, Any]:
        params = request.query_params
        items: list[dict[str, Any]] = []
        if not any(name in params for name in NEVER_MATCHING):
            items = await _assignments(
                deps,
                project_id=params.get("scope.project.id"),
                user_id=params.get("user.id"),
                role_id=params.get("role.id"),
                names=bool(query_flag(params.get("include_names"))),
                effective=bool(query_flag(params.get("effective"))),
            )
        return {"role_assignments": items, "links": deps.links.collection(request)}

    return router


async def _assignments(
    deps: IdentityDeps,
    *,
    project_id: str | None,
    user_id: str | None,
    role_id: str | None,
    names: bool,
    effective: bool,
) -> list[dict[str, Any]]:
    query = (
        select(RoleAssignment, Role.name, User.name, Project.name)
        .join(Role, Role.id == RoleAssignment.role_id)
        .join(User, User.id == RoleAssignment.user_id)
        .join(Project, Project.id == RoleAssignment.project_id)
        .order_by(Project.name, User.name, Role.name)
    )
    if project_id is not None:
        query = query.where(RoleAssignment.project_id == project_id)
    if user_id is not None:
        query = query.where(RoleAssignment.user_id == user_id)
    async with deps.sessions() as session:
        rows = (await session.execute(query)).all()
        role_ids = {
            name: rid for name, rid in (await session.execute(select(Role.name, Role.id))).all()
        }
    # Direct grants first, so a role both granted and implied is listed as granted.
    found: list[tuple[RoleAssignment, str, str, str, str | None]] = [
        (grant, grant.role_id, role_name, user_name, None)
        for grant, role_name, user_name, project_name in rows
    ]
    if effective:
        found += [
            (grant, role_ids[name], name, user_name, grant.role_id)
            for grant, role_name, user_name, project_name in rows
            for name in sorted(effective_roles({role_name}) - {role_name})
            if name in role_ids
        ]
    project_names = {grant.project_id: project_name for grant, _, _, project_name in rows}
    items: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for grant, rid, role_name, user_name, prior in found:
        key = (grant.project_id, grant.user_id, rid)
        if key in seen or (role_id is not None and rid != role_id):
            continue
        seen.add(key)
        role: dict[str, Any] = {"id": rid}
        user: dict[str, Any] = {"id": grant.user_id}
        project: dict[str, Any] = {"id": grant.project_id}
        if names:
            role["name"] = role_name
            user.update(name=user_name, domain=DOMAIN_REF)
            project.update(name=project_names[grant.project_id], domain=DOMAIN_REF)
        path = GRANT.format(project_id=grant.project_id, user_id=grant.user_id, role_id=rid)
        links = {"assignment": deps.links.of(path.removeprefix("/v3/"))}
        if prior is not None:
            links["prior_role"] = deps.links.of("roles", prior)
        items.append({"role": role, "user": user, "scope": {"project": project}, "links": links})
    return items
