"""Groups, their members and their roles on projects; roles get a description and
Keystone's "immutable" option (set on the seeded admin, member and reader).

Revision ID: gateway_0004
Revises: gateway_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0004"
down_revision = "gateway_0003"
branch_labels = None
depends_on = None

SEEDED_ROLES = ("admin", "member", "reader")


def upgrade() -> None:
    op.add_column("roles", sa.Column("description", sa.Text(), nullable=True))
    op.add_column("roles", sa.Column("immutable", sa.Boolean(), nullable=True))
    roles = sa.table("roles", sa.column("name", sa.String()), sa.column("immutable", sa.Boolean()))
    op.execute(roles.update().where(roles.c.name.in_(SEEDED_ROLES)).values(immutable=True))
    op.create_table(
        "groups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain_id", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.UniqueConstraint("domain_id", "name", name="uq_groups_domain_name"),
    )
    op.create_table(
        "group_memberships",
        sa.Column(
            "group_id",
            sa.String(64),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_group_memberships_user", "group_memberships", ["user_id"])
    op.create_table(
        "group_role_assignments",
        sa.Column(
            "group_id",
            sa.String(64),
            sa.ForeignKey("groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "role_id",
            sa.String(64),
            sa.ForeignKey("roles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_group_role_assignments_project", "group_role_assignments", ["project_id"])


def downgrade() -> None:
    op.drop_table("group_role_assignments")
    op.drop_table("group_memberships")
    op.drop_table("groups")
    with op.batch_alter_table("roles") as batch:
        batch.drop_column("immutable")
        batch.drop_column("description")
