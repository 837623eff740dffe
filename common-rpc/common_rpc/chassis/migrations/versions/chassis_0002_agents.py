"""Chassis table: agents (heartbeats and host capabilities).

Revision ID: chassis_0002
Revises: chassis_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chassis_0002"
down_revision = "chassis_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("binary", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.UniqueConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("agents")
