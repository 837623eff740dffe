"""Projects: ``/v3/projects`` (admin; a member may read the project its token is for).

    POST   /v3/projects        {"project": {"name": "p2", "enabled": true}}  -> 201, 409 duplicate
    GET    /v3/projects?name=p2                                              -> {"projects": [..]}
    GET    /v3/projects/{id}   -> 200, 404 (also for a name: clients then list with ?name=)
    PATCH  /v3/projects/{id}   {"project": {"enabled": false}}               -> 200
    DELETE /v3/projects/{id}   -> 204; its role assignments and tokens go with it

Names are unique in the (only) domain; the database enforces it, so two concurrent
creates of one name give one 201 and one 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common_rpc.errors import Conflict, Invalid, NotFound

from ..db.models import Project, new_id
from ..domain.auth import AuthContext
from .access import authorize
from .deps import IdentityDeps
from .lookup import get_or_404, not_none, query_flag, require_default_domain
from .schemas import ProjectCreateBody, ProjectUpdateBody
from .views import collection, project_view


def duplicate_project(name: str) -> Conflict:
    return Conflict(
        "Conflict occurred attempting to store project - "
        f"Duplicate entry found with name {name} at domain ID default."
    )


def projects_router(deps: IdentityDeps) -> APIRouter:
    router = APIRouter()
    admin = deps.access.admin
    caller = deps.access.caller

    @router.post("/v3/projects", status_code=201)
    async def create_project(
        body: ProjectCreateBody,
        _auth: AuthContext = Depends(admin("identity:create_project")),
    ) -> dict[str, Any]:
        spec = body.project
        if spec.is_domain:
            raise Invalid("Projects acting as domains are not supported.")
        domain_id = require_default_domain(spec.domain_id)
        if spec.parent_id not in (None, domain_id):
            raise Invalid("Nested projects are not supported: parent_id must be the domain.")
        project = Project(
            id=new_id(),
            name=spec.name,
            domain_id=domain_id,
            description=spec.description or "",
            enabled=spec.enabled,
        )
        try:
            async with deps.sessions.begin() as session:
                session.add(project)
        except IntegrityError:
            raise duplicate_project(spec.name) from None
        return {"project": project_view(project, deps.links)}

    @router.get("/v3/projects")
    async def list_projects(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_projects")),
        name: str | None = None,
        enabled: str | None = None,
        domain_id: str | None = None,
        is_domain: str | None = None,
    ) -> dict[str, Any]:
        query = select(Project).order_by(Project.name)
        if name is not None:
            query = query.where(Project.name == name)
        if query_flag(enabled) is not None:
            query = query.where(Project.enabled == query_flag(enabled))
        if domain_id is not None:
            query = query.where(Project.domain_id == domain_id)
        async with deps.sessions() as session:
            projects = list((await session.scalars(query)).all())
        if query_flag(is_domain):
            projects = []  # no project acts as a domain here
        views = [project_view(p, deps.links) for p in projects]
        return collection("projects", views, deps.links.collection(request))

    @router.get("/v3/projects/{project_id}")
    async def show_project(project_id: str, auth: AuthContext = Depends(caller)) -> dict[str, Any]:
        authorize("identity:get_project", auth, owner=auth.project_id == project_id)
        async with deps.sessions() as session:
            project = await get_or_404(session, Project, project_id, "project")
        return {"project": project_view(project, deps.links)}

    @router.patch("/v3/projects/{project_id}")
    async def update_project(
        project_id: str,
        body: ProjectUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_project")),
    ) -> dict[str, Any]:
        changes = body.project.model_dump(include=body.project.model_fields_set)
        not_none(changes, "name", "enabled")
        if "description" in changes:
            changes["description"] = changes["description"] or ""
        try:
            async with deps.sessions.begin() as session:
                project = await get_or_404(session, Project, project_id, "project")
                for key, value in changes.items():
                    setattr(project, key, value)
        except IntegrityError:
            raise duplicate_project(str(changes.get("name"))) from None
        if changes.get("enabled") is False:
            deps.tokens.forget()  # tokens scoped to it stop working at once here
        return {"project": project_view(project, deps.links)}

    @router.delete("/v3/projects/{project_id}", status_code=204)
    async def delete_project(
        project_id: str,
        _auth: AuthContext = Depends(admin("identity:delete_project")),
    ) -> Response:
        async with deps.sessions.begin() as session:
            # Assignments and tokens go by ON DELETE CASCADE; default projects become null.
            result = await session.execute(delete(Project).where(Project.id == project_id))
        if not result.rowcount:
            raise NotFound(f"Could not find project: {project_id}.")
        deps.tokens.forget()
        return Response(status_code=204)

    return router
