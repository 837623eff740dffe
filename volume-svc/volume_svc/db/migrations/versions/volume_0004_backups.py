"""Volume backups: one row per copy in a host's backup store.

A backup outlives its volume, so ``volume_id`` is a plain column, not a foreign key.

Revision ID: volume_0004
Revises: volume_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "volume_0004"
down_revision = "volume_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("volume_id", sa.String(36), nullable=False, index=True),
        sa.Column("snapshot_id", sa.String(36), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("container", sa.String(255), nullable=True),
        sa.Column("availability_zone", sa.String(255), nullable=False),
        sa.Column("fail_reason", sa.String(255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("restore_volume_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("data_timestamp", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("task_owner", sa.String(255), nullable=True),
        sa.Column("task_deadline", UtcDateTime(), nullable=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("backups")
