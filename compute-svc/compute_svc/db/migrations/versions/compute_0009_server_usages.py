"""The usage ledger of ``os-simple-tenant-usage``: each server's size and lifetime.

Revision ID: compute_0009
Revises: compute_0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "compute_0009"
down_revision = "compute_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_usages",
        sa.Column("server_id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("flavor", sa.String(255), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("server_usages")
