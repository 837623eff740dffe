"""Per-project quotas: usage counted with each row, limits an admin set.

Usage starts from the rows that already exist, so it equals them from the first request.

Revision ID: network_0005
Revises: network_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "network_0005"
down_revision = "network_0004"
branch_labels = None
depends_on = None

# resource -> the table its rows are counted in (ports without a project are not counted)
COUNTED = {
    "network": "networks",
    "subnet": "subnets",
    "port": "ports",
    "router": "routers",
    "floatingip": "floatingips",
    "security_group": "security_groups",
    "security_group_rule": "security_group_rules",
}


def upgrade() -> None:
    op.create_table(
        "quota_usages",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("resource", sa.String(32), primary_key=True),
        sa.Column("in_use", sa.Integer(), nullable=False),
    )
    op.create_table(
        "quota_limits",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("resource", sa.String(32), primary_key=True),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
    )
    for resource, table in COUNTED.items():
        op.execute(
            sa.text(
                f"INSERT INTO quota_usages (project_id, resource, in_use) "
                f"SELECT project_id, :resource, COUNT(*) FROM {table} "
                f"WHERE project_id <> '' GROUP BY project_id"
            ).bindparams(resource=resource)
        )


def downgrade() -> None:
    op.drop_table("quota_limits")
    op.drop_table("quota_usages")
