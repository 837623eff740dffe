"""The gateway service's tables (its own database; no other service reads it).

The chassis tables (outbox, processed events, operation log, idempotency keys) are
added by the chassis migration branch, not declared here.

    async with sessions.begin() as session:
        project = Project(id=new_id(), name="demo")
        session.add(project)
        session.add(User(name="alice", password_hash=stored, default_project_id=project.id))

Identity lives here: projects, users, groups, roles, role assignments (to users and to
groups), application credentials, tokens, and the service catalog (regions, services,
endpoints). Only one domain exists ("default", named "Default"); ``domain_id`` columns
keep Keystone's shape. A token row holds the SHA-256 of the secret, never the secret
itself; an application credential only the argon2id hash of its secret.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common_rpc.chassis.sweeper import UtcDateTime

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"


def new_id() -> str:
    """Keystone's id shape: a UUID4 as 32 hex digits."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_projects_domain_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN_ID)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_users_domain_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN_ID)
    # None: the user cannot log in with a password.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="SET NULL"), default=None
    )
    email: Mapped[str | None] = mapped_column(String(255), default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Failed password attempts in a row and the last one's time (Keystone's lockout).
    failed_auth_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_auth_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # Keystone's user option ignore_lockout_failure_attempts (None: never set).
    ignore_lockout: Mapped[bool | None] = mapped_column(Boolean, default=None)


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Keystone's resource option "immutable" (None: never set). The gateway's policy keys
    # on admin, member and reader, so those three are made immutable.
    immutable: Mapped[bool | None] = mapped_column(Boolean, default=None)


class RoleAssignment(Base):
    """A role of a user on a project; the primary key makes a grant unique."""

    __tablename__ = "role_assignments"
    __table_args__ = (Index("ix_role_assignments_project", "project_id"),)

    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_groups_domain_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN_ID)
    description: Mapped[str | None] = mapped_column(Text, default=None)


class GroupMembership(Base):
    __tablename__ = "group_memberships"
    __table_args__ = (Index("ix_group_memberships_user", "user_id"),)

    group_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )


class GroupRoleAssignment(Base):
    """A role of a group on a project: every member holds it there."""

    __tablename__ = "group_role_assignments"
    __table_args__ = (Index("ix_group_role_assignments_project", "project_id"),)

    group_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )


class Region(Base):
    """A catalog region; deleting one deletes its child regions (Keystone's rule)."""

    __tablename__ = "regions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True, default=new_id)
    description: Mapped[str] = mapped_column(String(255), default="")
    parent_region_id: Mapped[str | None] = mapped_column(
        String(255), ForeignKey("regions.id", ondelete="CASCADE"), default=None, index=True
    )


class Service(Base):
    """A catalog service: its type is what clients look up ("compute", "volumev3")."""

    __tablename__ = "services"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str | None] = mapped_column(Text, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Endpoint(Base):
    """A service's URL for one interface in one region; ``$(project_id)s`` is substituted."""

    __tablename__ = "endpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    service_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    # RESTRICT: a region with endpoints cannot go (the API answers 403 before that).
    region_id: Mapped[str | None] = mapped_column(
        String(255), ForeignKey("regions.id", ondelete="RESTRICT"), default=None, index=True
    )
    interface: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class ApplicationCredential(Base):
    """A secret a user made to let an application act on one project with chosen roles."""

    __tablename__ = "application_credentials"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_application_credentials_user_name"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # False: tokens got with it may not manage application credentials.
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)


class ApplicationCredentialRole(Base):
    """A role an application credential's tokens may carry (if the user still holds it)."""

    __tablename__ = "application_credential_roles"

    application_credential_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("application_credentials.id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )


class Token(Base):
    """An issued token; ``id`` is the hex SHA-256 of the secret the client holds."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    audit_id: Mapped[str] = mapped_column(String(32), unique=True)
    # The first token of a rescoping chain, as Keystone's second audit id.
    audit_chain_id: Mapped[str | None] = mapped_column(String(32), default=None)
    methods: Mapped[str] = mapped_column(String(64), default="password")
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE"), default=None, index=True
    )
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # Set for a token got with an application credential: it goes with the credential.
    application_credential_id: Mapped[str | None] = mapped_column(
        String(64),
        ForeignKey("application_credentials.id", ondelete="CASCADE"),
        default=None,
        index=True,
    )
