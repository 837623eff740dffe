"""Volume types, volumes, snapshots, attachments, exports and quotas.

Revision ID: volume_0002
Revises: volume_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "volume_0002"
down_revision = "volume_0001"
branch_labels = None
depends_on = None


def _transitional() -> list[sa.Column]:
    return [
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("task_owner", sa.String(255), nullable=True),
        sa.Column("task_deadline", UtcDateTime(), nullable=True, index=True),
    ]


def upgrade() -> None:
    op.create_table(
        "volume_types",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("extra_specs", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(36), primary_key=True),
        *_transitional(),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("volume_type_id", sa.String(36), sa.ForeignKey("volume_types.id")),
        sa.Column("availability_zone", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("snapshot_id", sa.String(36), nullable=True),
        sa.Column("source_volid", sa.String(36), nullable=True),
        sa.Column("chap_secret", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(36), primary_key=True),
        *_transitional(),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("volume_id", sa.String(36), sa.ForeignKey("volumes.id"), index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("server_id", sa.String(36), nullable=False, index=True),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("mountpoint", sa.String(255), nullable=False),
        sa.Column("attached_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "volume_exports",
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("initiator", sa.String(255), nullable=False),
        sa.Column("connector", sa.JSON(), nullable=False),
        sa.Column("removing", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "quota_usages",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("resource", sa.String(32), primary_key=True),
        sa.Column("in_use", sa.Integer(), nullable=False),
    )
    op.create_table(
        "quota_limits",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("resource", sa.String(32), primary_key=True),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "quota_limits",
        "quota_usages",
        "volume_exports",
        "attachments",
        "snapshots",
        "volumes",
        "volume_types",
    ):
        op.drop_table(table)
