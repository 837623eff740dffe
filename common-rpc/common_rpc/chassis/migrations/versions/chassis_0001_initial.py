"""Chassis tables: outbox, processed_events, rpc_operations, idempotency_keys.

Revision ID: chassis_0001
Revises:
Branch labels: chassis
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chassis_0001"
down_revision = None
branch_labels = ("chassis",)
depends_on = None

# SQLite only autoincrements an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("seq", _BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id"),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(128), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_processed_events_at", "processed_events", ["processed_at"])
    op.create_table(
        "rpc_operations",
        sa.Column("op_id", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rpc_operations_updated", "rpc_operations", ["updated_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("method_path", sa.Text(), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_rpc_operations_updated", table_name="rpc_operations")
    op.drop_table("rpc_operations")
    op.drop_index("ix_processed_events_at", table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("outbox")
