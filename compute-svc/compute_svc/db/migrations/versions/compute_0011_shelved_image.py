"""Shelving: the image a shelved server was saved into (unshelve boots it, then deletes it).

Revision ID: compute_0011
Revises: compute_0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "compute_0011"
down_revision = "compute_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("shelved_image_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("shelved_image_id")
