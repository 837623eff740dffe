"""Image members: the projects a ``shared`` image is shared with and their answers.

Revision ID: compute_0008
Revises: compute_0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "compute_0008"
down_revision = "compute_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_members",
        sa.Column("image_id", sa.String(36), primary_key=True),
        sa.Column("member_id", sa.String(255), primary_key=True, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("image_members")
