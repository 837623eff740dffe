"""Volumes made from an image: the image's id and Cinder's ``volume_image_metadata``.

Revision ID: volume_0005
Revises: volume_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "volume_0005"
down_revision = "volume_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("image_id", sa.String(36), nullable=True))
        batch.add_column(
            sa.Column("image_metadata", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("image_metadata")
        batch.drop_column("image_id")
