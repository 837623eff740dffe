"""Per-project quotas: usage counted with each server and key pair, limits an admin set.

Usage starts from the rows that already exist (every server row holds its quota until
it is removed, whatever its status), so it equals them from the first request.

Revision ID: compute_0004
Revises: compute_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "compute_0004"
down_revision = "compute_0003"
branch_labels = None
depends_on = None

# resource -> what each project's rows add up to
COUNTED = {
    "instances": ("COUNT(*)", "servers"),
    "cores": ("SUM(vcpus)", "servers"),
    "ram": ("SUM(ram_mb)", "servers"),
    "key_pairs": ("COUNT(*)", "keypairs"),
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
    for resource, (amount, table) in COUNTED.items():
        op.execute(
            sa.text(
                f"INSERT INTO quota_usages (project_id, resource, in_use) "
                f"SELECT project_id, :resource, {amount} FROM {table} "
                f"WHERE project_id <> '' GROUP BY project_id"
            ).bindparams(resource=resource)
        )


def downgrade() -> None:
    op.drop_table("quota_limits")
    op.drop_table("quota_usages")
