"""A server's security groups (ids and names), for its ports and its views.

Revision ID: compute_0003
Revises: compute_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "compute_0003"
down_revision = "compute_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("servers", sa.Column("security_groups", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("security_groups")
