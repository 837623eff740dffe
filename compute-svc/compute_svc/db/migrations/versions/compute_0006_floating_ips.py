"""Floating IPs as the network service's events report them, for servers' addresses.

Revision ID: compute_0006
Revises: compute_0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "compute_0006"
down_revision = "compute_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "floating_ips",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("port_id", sa.String(36), nullable=True, index=True),
        sa.Column("fixed_ip_address", sa.String(64), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("floating_ips")
