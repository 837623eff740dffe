"""A desired-state generation on networks and ports, bumped whenever a host must converge.

Revision ID: network_0003
Revises: network_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "network_0003"
down_revision = "network_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("networks", "ports"):
        op.add_column(
            table,
            sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
        )


def downgrade() -> None:
    for table in ("ports", "networks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("generation")
