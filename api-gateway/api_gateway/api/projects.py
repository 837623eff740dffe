"""Projects: ``/v3/projects`` (admin; a member may read the project its token is for).

POST   /v3/projects        {"project": {"name": "p2", "enabled": true}}  -> 201, 409 duplicate
GET    /v3/projects?name=p2                                              -> {"projects": [..]}
GET    /v3/projects/{id}   -> 200, 404 (also for a name: clients then list with ?name=)
PATCH  /v3/projects/{id}   {"project": {"enabled": false}}               -> 200
DELETE /v3/projects/{id}   -> 204; its role assignments and tokens go with it
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from ..domain import projects
from ..domain.auth import AuthContext
from ..wiring import Deps
from .common import Access, authorize, query_flag
from .schemas import ProjectCreateBody, ProjectUpdateBody
from .views import Links, collection, project_view


def projects_router(deps: Deps) -> APIRouter:
    router = APIRouter()
    access = Access(deps.tokens)
    admin, caller = access.admin, access.caller
    links = Links(deps.settings.public_url)

    @router.post("/v3/projects", status_code=201)
    async def create_project(
        body: ProjectCreateBody,
        _auth: AuthContext = Depends(admin("identity:create_project")),
    ) -> dict[str, Any]:
        project = await projects.create_project(deps, body.project)
        return {"project": project_view(project, links)}

    @router.get("/v3/projects")
    async def list_projects(
        request: Request,
        _auth: AuthContext = Depends(admin("identity:list_projects")),
        name: str | None = None,
        enabled: str | None = None,
        domain_id: str | None = None,
        is_domain: str | None = None,
    ) -> dict[str, Any]:
        found = await projects.list_projects(
            deps,
            name=name,
            enabled=query_flag(enabled),
            domain_id=domain_id,
            is_domain=query_flag(is_domain),
        )
        views = [project_view(p, links) for p in found]
        return collection("projects", views, links.collection(request))

    @router.get("/v3/projects/{project_id}")
    async def show_project(project_id: str, auth: AuthContext = Depends(caller)) -> dict[str, Any]:
        authorize("identity:get_project", auth, owner=auth.project_id == project_id)
        project = await projects.get_project(deps, project_id)
        return {"project": project_view(project, links)}

    @router.patch("/v3/projects/{project_id}")
    async def update_project(
        project_id: str,
        body: ProjectUpdateBody,
        _auth: AuthContext = Depends(admin("identity:update_project")),
    ) -> dict[str, Any]:
        project = await projects.update_project(deps, project_id, body.project)
        return {"project": project_view(project, links)}

    @router.delete("/v3/projects/{project_id}", status_code=204)
    async def delete_project(
        project_id: str,
        _auth: AuthContext = Depends(admin("identity:delete_project")),
    ) -> Response:
        await projects.delete_project(deps, project_id)
        return Response(status_code=204)

    return router
