"""What the identity calls take: a token request's ``auth`` and the project and user specs.

    auth = Auth.model_validate({"identity": {"methods": ["password"], "password":
        {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "pw"}}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}})
    ProjectCreate.model_validate({"name": "p2", "enabled": True})

Limits and types are Keystone's request schemas'. Unknown keys are ignored (clients send
extras such as ``tags`` or ``options``). On updates, ``model_fields_set`` tells which
attributes the client gave. ``api/schemas.py`` wraps them in the request bodies and
answers one that does not fit in Keystone's words.
"""

from __future__ import annotations

from datetime import datetime
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
    password: Password | None = None


class PasswordMethod(Body):
    user: UserRef


class TokenMethod(Body):
    id: Annotated[str, Field(min_length=1, max_length=512)]


class CredentialUser(Body):
    id: Id | None = None
    name: Name | None = None
    domain: DomainRef | None = None


class ApplicationCredentialMethod(Body):
    """By id, or by name with its user (by id, or by name and domain); the secret always."""

    id: Id | None = None
    name: Name | None = None
    user: CredentialUser | None = None
    secret: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class Identity(Body):
    # Other methods' payloads are kept: Keystone asks for each named method's payload
    # before it says a method is not supported.
    model_config = ConfigDict(extra="allow")

    methods: Annotated[list[str], Field(min_length=1)]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None
    application_credential: ApplicationCredentialMethod | None = None

    def has_payload(self, method: str) -> bool:
        return getattr(self, method, None) is not None or method in (self.model_extra or {})


class ProjectRef(Body):
    id: Id | None = None
    name: ProjectName | None = None
    domain: DomainRef | None = None


class Scope(Body):
    project: ProjectRef | None = None
    domain: DomainRef | None = None
    # Refused whatever it holds (no system scope here), so its content is left free-form.
    system: dict[str, Any] | None = None


class Auth(Body):
    identity: Identity
    # "unscoped" asks for an unscoped token even when the user has a default project.
    scope: Scope | Literal["unscoped"] | None = None


# --- projects -----------------------------------------------------------------------------


class ProjectCreate(Body):
    name: ProjectName
    description: str | None = None
    enabled: StrictBool = True
    domain_id: Id | None = None
    is_domain: StrictBool = False
    parent_id: Id | None = None


class ProjectUpdate(Body):
    name: ProjectName | None = None
    description: str | None = None
    enabled: StrictBool | None = None


# --- users ----------------------------------------------------------------------------------


class UserOptions(Body):
    """Keystone's user options; only the lockout's is kept here."""

    ignore_lockout_failure_attempts: StrictBool | None = None


class UserCreate(Body):
    name: Name
    password: Password | None = None
    enabled: StrictBool = True
    domain_id: Id | None = None
    default_project_id: Id | None = None
    email: Annotated[str, Field(max_length=255)] | None = None
    description: str | None = None
    options: UserOptions | None = None


class UserUpdate(Body):
    name: Name | None = None
    password: Password | None = None
    enabled: StrictBool | None = None
    default_project_id: Id | None = None
    email: Annotated[str, Field(max_length=255)] | None = None
    description: str | None = None
    options: UserOptions | None = None


# --- the catalog: regions, services, endpoints --------------------------------------------

RegionId = Annotated[str, Field(min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=255)]
Interface = Literal["admin", "internal", "public"]
# Keystone's endpoint URL: a scheme, then anything; 225 characters at most.
URL = Annotated[str, Field(max_length=225, pattern=r"^[a-zA-Z0-9+.-]+:.+")]


class RegionCreate(Body):
    # Empty: one is generated (Keystone accepts "" on create).
    id: Annotated[str, Field(max_length=255)] | None = None
    description: Description | None = None
    parent_region_id: RegionId | None = None


class RegionUpdate(Body):
    id: RegionId | None = None  # only the region's own id is accepted
    description: Description | None = None
    parent_region_id: RegionId | None = None


class ServiceCreate(Body):
    type: Name
    name: Name | None = None
    description: str | None = None
    enabled: StrictBool = True


class ServiceUpdate(Body):
    id: str | None = None
    type: Name | None = None
    name: Name | None = None
    description: str | None = None
    enabled: StrictBool | None = None


class EndpointCreate(Body):
    interface: Interface
    service_id: str
    url: URL
    region_id: str | None = None
    # Keystone v3.0's name for region_id: a region named so is made when missing.
    region: str | None = None
    enabled: StrictBool = True


class EndpointUpdate(Body):
    id: str | None = None
    interface: Interface | None = None
    service_id: str | None = None
    url: URL | None = None
    region_id: str | None = None
    region: str | None = None
    enabled: StrictBool | None = None


# --- roles and groups ---------------------------------------------------------------------


class RoleOptions(Body):
    immutable: StrictBool | None = None


class RoleCreate(Body):
    name: Name
    description: Description | None = None
    domain_id: Id | None = None  # only global roles here: a domain's is refused
    options: RoleOptions = RoleOptions()


class RoleUpdate(Body):
    name: Name | None = None
    description: Description | None = None
    options: RoleOptions | None = None


GroupName = Annotated[str, Field(min_length=1, max_length=64)]


class GroupCreate(Body):
    name: GroupName
    description: str | None = None
    domain_id: Id | None = None


class GroupUpdate(Body):
    name: GroupName | None = None
    description: str | None = None


class PasswordChange(Body):
    """``POST /v3/users/{id}/password``: the new password, and the old one as proof."""

    password: Password
    original_password: Password


# --- application credentials -----------------------------------------------------------


class RoleNameOrId(Body):
    id: Id | None = None
    name: Name | None = None


class ApplicationCredentialCreate(Body):
    name: Name
    description: str | None = None
    # Generated when left out: shown once in the create's answer.
    secret: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)] | None = None
    # Naive times are UTC, as Keystone reads them.
    expires_at: datetime | None = None
    # Left out: every role the creating token holds.
    roles: list[RoleNameOrId] | None = None
    unrestricted: StrictBool = False
    # Not offered here: any rule is refused, so its shape is left free-form.
    access_rules: list[dict[str, Any]] | None = None
