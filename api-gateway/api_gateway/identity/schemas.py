"""Request bodies of the identity API; a body that does not fit is a 400 in Keystone's shape.

    AuthRequest.model_validate({"auth": {"identity": {"methods": ["password"], "password":
        {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "pw"}}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}})
    ProjectCreateBody.model_validate({"project": {"name": "p2", "enabled": True}})

Unknown keys are ignored (clients send extras such as ``tags`` or ``options``). On
updates, ``model_fields_set`` tells which attributes the client gave.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from .passwords import MAX_PASSWORD_LENGTH

Name = Annotated[str, Field(min_length=1, max_length=255)]
ProjectName = Annotated[str, Field(min_length=1, max_length=64)]
Password = Annotated[str, Field(max_length=MAX_PASSWORD_LENGTH)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- POST /v3/auth/tokens --------------------------------------------------------------


class DomainRef(Body):
    id: Id | None = None
    name: Name | None = None


class UserRef(Body):
    id: Id | None = None
    name: Name | None = None
    domain: DomainRef | None = None
    password: Password


class PasswordMethod(Body):
    user: UserRef


class TokenMethod(Body):
    id: Annotated[str, Field(min_length=1, max_length=512)]


class Identity(Body):
    methods: Annotated[list[str], Field(min_length=1)]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class ProjectRef(Body):
    id: Id | None = None
    name: ProjectName | None = None
    domain: DomainRef | None = None


class Scope(Body):
    project: ProjectRef | None = None
    domain: DomainRef | None = None
    system: dict[str, Any] | None = None


class Auth(Body):
    identity: Identity
    # "unscoped" asks for an unscoped token even when the user has a default project.
    scope: Scope | Literal["unscoped"] | None = None


class AuthRequest(Body):
    auth: Auth


# --- projects -----------------------------------------------------------------------------


class ProjectCreate(Body):
    name: ProjectName
    description: str | None = None
    enabled: StrictBool = True
    domain_id: Id | None = None
    is_domain: StrictBool = False
    parent_id: Id | None = None


class ProjectCreateBody(Body):
    project: ProjectCreate


class ProjectUpdate(Body):
    name: ProjectName | None = None
    description: str | None = None
    enabled: StrictBool | None = None


class ProjectUpdateBody(Body):
    project: ProjectUpdate


# --- users ----------------------------------------------------------------------------------


class UserCreate(Body):
    name: Name
    password: Password | None = None
    enabled: StrictBool = True
    domain_id: Id | None = None
    default_project_id: Id | None = None
    email: Annotated[str, Field(max_length=255)] | None = None
    description: str | None = None


class UserCreateBody(Body):
    user: UserCreate


class UserUpdate(Body):
    name: Name | None = None
    password: Password | None = None
    enabled: StrictBool | None = None
    default_project_id: Id | None = None
    email: Annotated[str, Field(max_length=255)] | None = None
    description: str | None = None


class UserUpdateBody(Body):
    user: UserUpdate
