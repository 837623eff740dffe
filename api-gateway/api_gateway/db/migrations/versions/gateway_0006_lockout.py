"""Users' failed password attempts (for the lockout) and Keystone's option to ignore it.

Revision ID: gateway_0006
Revises: gateway_0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0006"
down_revision = "gateway_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("failed_auth_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("failed_auth_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ignore_lockout", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("ignore_lockout")
        batch.drop_column("failed_auth_at")
        batch.drop_column("failed_auth_count")
