"""Nova's instance actions and their events; a detach's event is its transitional record.

Revision ID: compute_0005
Revises: compute_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "compute_0005"
down_revision = "compute_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("server_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("project_id", sa.String(255), nullable=True),
        sa.Column("start_time", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_instance_actions_server_request", "instance_actions", ["server_id", "request_id"]
    )
    op.create_table(
        "instance_action_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("action_id", sa.Integer(), nullable=False, index=True),
        sa.Column("server_id", sa.String(36), nullable=False, index=True),
        sa.Column("event", sa.String(255), nullable=False),
        sa.Column("target", sa.String(36), nullable=True),
        sa.Column("start_time", UtcDateTime(), nullable=False),
        sa.Column("finish_time", UtcDateTime(), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("task_owner", sa.String(255), nullable=True),
        sa.Column("task_deadline", UtcDateTime(), nullable=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("instance_action_events")
    op.drop_index("ix_instance_actions_server_request", table_name="instance_actions")
    op.drop_table("instance_actions")
