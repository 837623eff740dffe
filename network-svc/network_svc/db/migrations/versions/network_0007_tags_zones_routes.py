"""Resource tags (Neutron's standard-attr-tag) on every taggable table, availability zone
hints on networks and routers, and routers' static routes (extraroute).

Revision ID: network_0007
Revises: network_0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "network_0007"
down_revision = "network_0006"
branch_labels = None
depends_on = None

TAGGED = ("networks", "subnets", "ports", "routers", "security_groups", "floatingips")
EMPTY = sa.text("'[]'")


def upgrade() -> None:
    for table in TAGGED:
        op.add_column(table, sa.Column("tags", sa.JSON(), nullable=False, server_default=EMPTY))
    for table in ("networks", "routers"):
        op.add_column(
            table,
            sa.Column("availability_zone_hints", sa.JSON(), nullable=False, server_default=EMPTY),
        )
    op.add_column("routers", sa.Column("routes", sa.JSON(), nullable=False, server_default=EMPTY))


def downgrade() -> None:
    with op.batch_alter_table("routers") as batch:
        batch.drop_column("routes")
    for table in ("networks", "routers"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("availability_zone_hints")
    for table in TAGGED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tags")
