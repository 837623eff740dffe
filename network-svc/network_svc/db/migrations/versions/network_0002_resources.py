"""Networks, subnets, ports, IP allocations and security groups.

Revision ID: network_0002
Revises: network_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "network_0002"
down_revision = "network_0001"
branch_labels = None
depends_on = None


def _standard() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "networks",
        *_standard(),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("network_type", sa.String(16), nullable=False),
        sa.Column("physical_network", sa.String(64), nullable=True),
        sa.Column("segmentation_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("network_type", "segmentation_id", name="uq_segment"),
    )
    op.create_table(
        "subnets",
        *_standard(),
        sa.Column("network_id", sa.String(36), sa.ForeignKey("networks.id"), index=True),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(64), nullable=False),
        sa.Column("gateway_ip", sa.String(64), nullable=True),
        sa.Column("enable_dhcp", sa.Boolean(), nullable=False),
        sa.Column("allocation_pools", sa.JSON(), nullable=False),
        sa.Column("dns_nameservers", sa.JSON(), nullable=False),
        sa.Column("host_routes", sa.JSON(), nullable=False),
    )
    op.create_table(
        "ports",
        *_standard(),
        sa.Column("network_id", sa.String(36), sa.ForeignKey("networks.id"), index=True),
        sa.Column("mac_address", sa.String(17), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False, index=True),
        sa.Column("device_owner", sa.String(255), nullable=False),
        sa.Column("host_id", sa.String(255), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("network_id", "mac_address", name="uq_port_mac"),
    )
    op.create_table(
        "ip_allocations",
        sa.Column("subnet_id", sa.String(36), sa.ForeignKey("subnets.id"), primary_key=True),
        sa.Column("ip_address", sa.String(64), primary_key=True),
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("network_id", sa.String(36), nullable=False, index=True),
    )
    op.create_table(
        "security_groups",
        *_standard(),
        sa.Column("default_for", sa.String(64), nullable=True, unique=True),
        sa.Column("stateful", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "security_group_rules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column(
            "security_group_id",
            sa.String(36),
            sa.ForeignKey("security_groups.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("ethertype", sa.String(4), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=True),
        sa.Column("port_range_min", sa.Integer(), nullable=True),
        sa.Column("port_range_max", sa.Integer(), nullable=True),
        sa.Column("remote_ip_prefix", sa.String(64), nullable=True),
        sa.Column("remote_group_id", sa.String(36), nullable=True),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
    )
    op.create_table(
        "port_security_groups",
        sa.Column(
            "port_id",
            sa.String(36),
            sa.ForeignKey("ports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "security_group_id",
            sa.String(36),
            sa.ForeignKey("security_groups.id"),
            primary_key=True,
        ),
    )


def downgrade() -> None:
    for table in (
        "port_security_groups",
        "security_group_rules",
        "security_groups",
        "ip_allocations",
        "ports",
        "subnets",
        "networks",
    ):
        op.drop_table(table)
