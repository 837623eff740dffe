"""Volume transfers, the attachments API's columns, and admin metadata on volumes.

Existing attachments were all made by compute's attach protocol: they are ``attached``
from ``compute``, read-write, with no connector or connection info kept.

Revision ID: volume_0003
Revises: volume_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "volume_0003"
down_revision = "volume_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(
            sa.Column("admin_metadata", sa.JSON(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(
            sa.Column("status", sa.String(32), nullable=False, server_default="attached")
        )
        batch.add_column(
            sa.Column("origin", sa.String(16), nullable=False, server_default="compute")
        )
        batch.add_column(
            sa.Column("attach_mode", sa.String(8), nullable=False, server_default="rw")
        )
        batch.add_column(sa.Column("connector", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column("connection_info", sa.JSON(), nullable=False, server_default="{}")
        )
    op.create_table(
        "volume_transfers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "volume_id",
            sa.String(36),
            sa.ForeignKey("volumes.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("source_project_id", sa.String(64), nullable=False, index=True),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("crypt_hash", sa.String(128), nullable=False),
        sa.Column("no_snapshots", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("volume_transfers")
    with op.batch_alter_table("attachments") as batch:
        for column in ("connection_info", "connector", "attach_mode", "origin", "status"):
            batch.drop_column(column)
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("admin_metadata")
