"""Projects of the one domain: create, find, change and delete, with Keystone's rules.

    project = await create_project(deps, ProjectCreate(name="p2"))     # 409 for a taken name
    await list_projects(deps, name="p2")                               # [Project]
    await update_project(deps, project.id, ProjectUpdate(enabled=False))
    await delete_project(deps, project.id)     # its role assignments and tokens go with it

Names are unique in the (only) domain; the database enforces it, so two concurrent
creates of one name give one project and one 409. A project disabled or deleted ends
the tokens scoped to it at once in this process (other replicas: within the token cache).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common_rpc.errors import Conflict, Invalid, NotFound

from ..db.models import GroupMembership, GroupRoleAssignment, Project, RoleAssignment, new_id
from ..wiring import Deps
from .common import get_or_404, not_none, require_default_domain
from .schemas import ProjectCreate, ProjectUpdate


def duplicate_project(name: str) -> Conflict:
    return Conflict(
        "Conflict occurred attempting to store project - "
        f"Duplicate entry found with name {name} at domain ID default."
    )


async def create_project(deps: Deps, spec: ProjectCreate) -> Project:
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
    return project


async def list_projects(
    deps: Deps,
    *,
    name: str | None = None,
    enabled: bool | None = None,
    domain_id: str | None = None,
    is_domain: bool | None = None,
) -> list[Project]:
    """Projects by name, filtered as asked; none acts as a domain here."""
    query = select(Project).order_by(Project.name)
    if name is not None:
        query = query.where(Project.name == name)
    if enabled is not None:
        query = query.where(Project.enabled == enabled)
    if domain_id is not None:
        query = query.where(Project.domain_id == domain_id)
    async with deps.sessions() as session:
        projects = list((await session.scalars(query)).all())
    return [] if is_domain else projects


async def get_project(deps: Deps, project_id: str) -> Project:
    async with deps.sessions() as session:
        return await get_or_404(session, Project, project_id, "project")


async def update_project(deps: Deps, project_id: str, spec: ProjectUpdate) -> Project:
    """Apply the attributes the client gave (``model_fields_set``)."""
    changes = spec.model_dump(include=spec.model_fields_set)
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
    return project


async def delete_project(deps: Deps, project_id: str) -> None:
    async with deps.sessions.begin() as session:
        # Assignments and tokens go by ON DELETE CASCADE; default projects become null.
        result = await session.execute(delete(Project).where(Project.id == project_id))
    if not result.rowcount:
        raise NotFound(f"Could not find project: {project_id}.")
    deps.tokens.forget()


async def assigned_projects(
    session: AsyncSession, user_id: str, *, enabled_only: bool = False
) -> list[Project]:
    """Projects where the user holds at least one role (its own or one of its groups')."""
    direct = select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)
    via_groups = (
        select(GroupRoleAssignment.project_id)
        .join(GroupMembership, GroupMembership.group_id == GroupRoleAssignment.group_id)
        .where(GroupMembership.user_id == user_id)
    )
    query = select(Project).where(Project.id.in_(direct.union(via_groups))).order_by(Project.name)
    if enabled_only:
        query = query.where(Project.enabled.is_(True))
    return list((await session.scalars(query)).all())


async def usable_projects(deps: Deps, user_id: str) -> list[Project]:
    """The enabled projects a user holds a role on: those it may scope a token to."""
    async with deps.sessions() as session:
        return await assigned_projects(session, user_id, enabled_only=True)
