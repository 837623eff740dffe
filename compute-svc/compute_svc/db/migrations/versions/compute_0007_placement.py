"""Placement across hosts: availability zones, server groups, migrations, service notes.

Revision ID: compute_0007
Revises: compute_0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "compute_0007"
down_revision = "compute_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("availability_zone", sa.String(255), nullable=True))
    op.create_table(
        "server_groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "server_group_members",
        sa.Column("server_id", sa.String(36), primary_key=True),
        sa.Column("group_id", sa.String(36), nullable=False, index=True),
    )
    op.create_table(
        "migrations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("server_id", sa.String(36), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_host", sa.String(255), nullable=False),
        sa.Column("dest_host", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("old_status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "compute_services",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("compute_services")
    op.drop_table("migrations")
    op.drop_table("server_group_members")
    op.drop_table("server_groups")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("availability_zone")
