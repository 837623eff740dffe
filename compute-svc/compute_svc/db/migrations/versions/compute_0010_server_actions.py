"""Server actions: a server's lock (who locked it, why) and the flavors of a resize.

Revision ID: compute_0010
Revises: compute_0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "compute_0010"
down_revision = "compute_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("locked_by", sa.String(16), nullable=True))
        batch.add_column(sa.Column("locked_reason", sa.String(255), nullable=True))
    with op.batch_alter_table("migrations") as batch:
        batch.add_column(sa.Column("old_flavor", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("new_flavor", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("migrations") as batch:
        batch.drop_column("new_flavor")
        batch.drop_column("old_flavor")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("locked_reason")
        batch.drop_column("locked_by")
