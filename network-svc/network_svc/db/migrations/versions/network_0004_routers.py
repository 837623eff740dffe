"""Routers, their interfaces and floating IPs.

Revision ID: network_0004
Revises: network_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "network_0004"
down_revision = "network_0003"
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "routers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        *_stamps(),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column(
            "gw_network_id", sa.String(36), sa.ForeignKey("networks.id"), nullable=True, index=True
        ),
        sa.Column(
            "gw_port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("enable_snat", sa.Boolean(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False, index=True),
        sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "router_ports",
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "router_id", sa.String(36), sa.ForeignKey("routers.id"), nullable=False, index=True
        ),
        sa.Column(
            "subnet_id", sa.String(36), sa.ForeignKey("subnets.id"), nullable=False, index=True
        ),
        sa.UniqueConstraint("router_id", "subnet_id", name="uq_router_subnet"),
    )
    op.create_table(
        "floatingips",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column(
            "floating_network_id",
            sa.String(36),
            sa.ForeignKey("networks.id"),
            nullable=False,
            index=True,
        ),
        sa.Column("floating_subnet_id", sa.String(36), sa.ForeignKey("subnets.id"), nullable=False),
        sa.Column(
            "floating_port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("floating_ip_address", sa.String(64), nullable=False),
        sa.Column(
            "fixed_port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        sa.Column("fixed_ip_address", sa.String(64), nullable=True),
        sa.Column(
            "router_id", sa.String(36), sa.ForeignKey("routers.id"), nullable=True, index=True
        ),
        *_stamps(),
        sa.UniqueConstraint("fixed_port_id", "fixed_ip_address", name="uq_floatingip_fixed"),
    )


def downgrade() -> None:
    op.drop_table("floatingips")
    op.drop_table("router_ports")
    op.drop_table("routers")
