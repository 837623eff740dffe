"""The service catalog as rows: regions, services and their endpoints (Keystone's tables).

The gateway's bootstrap seeds them from its settings (``domain/bootstrap.py``).

Revision ID: gateway_0003
Revises: gateway_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column(
            "parent_region_id",
            sa.String(255),
            sa.ForeignKey("regions.id", ondelete="CASCADE"),
            nullable=True,
        ),
    )
    op.create_index("ix_regions_parent_region_id", "regions", ["parent_region_id"])
    op.create_table(
        "services",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "service_id",
            sa.String(64),
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "region_id",
            sa.String(255),
            sa.ForeignKey("regions.id", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column("interface", sa.String(8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_endpoints_service_id", "endpoints", ["service_id"])
    op.create_index("ix_endpoints_region_id", "endpoints", ["region_id"])


def downgrade() -> None:
    op.drop_table("endpoints")
    op.drop_table("services")
    op.drop_table("regions")
