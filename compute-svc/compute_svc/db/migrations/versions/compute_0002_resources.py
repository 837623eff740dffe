"""Flavors, keypairs, images, servers, their ports and volumes, host usage and claims.

Revision ID: compute_0002
Revises: compute_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from common_rpc.chassis.sweeper import UtcDateTime

revision = "compute_0002"
down_revision = "compute_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flavors",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("ephemeral_gb", sa.Integer(), nullable=False),
        sa.Column("swap_mb", sa.Integer(), nullable=False),
        sa.Column("rxtx_factor", sa.Float(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "keypairs",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("key_type", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("disk_format", sa.String(16), nullable=True),
        sa.Column("container_format", sa.String(16), nullable=True),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("min_disk", sa.Integer(), nullable=False),
        sa.Column("min_ram", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("checksum", sa.String(32), nullable=True),
        sa.Column("os_hash_value", sa.String(128), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "servers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("flavor_id", sa.String(255), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=True, index=True),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("task_owner", sa.String(255), nullable=True),
        sa.Column("task_deadline", UtcDateTime(), nullable=True, index=True),
        sa.Column("vm_state", sa.String(32), nullable=False),
        sa.Column("task_state", sa.String(32), nullable=True),
        sa.Column("power_state", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("key_name", sa.String(255), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("user_data", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("requested_networks", sa.JSON(), nullable=False),
        sa.Column("nics", sa.JSON(), nullable=False),
        sa.Column("access_ipv4", sa.String(64), nullable=False),
        sa.Column("access_ipv6", sa.String(64), nullable=False),
        sa.Column("fault", sa.JSON(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("launched_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "volume_attachments",
        sa.Column("server_id", sa.String(36), primary_key=True),
        sa.Column("volume_id", sa.String(36), primary_key=True, unique=True),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("connection", sa.JSON(), nullable=False),
    )
    op.create_table(
        "server_ports",
        sa.Column("port_id", sa.String(36), primary_key=True),
        sa.Column("server_id", sa.String(36), nullable=False, index=True),
    )
    op.create_table(
        "host_usage",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
    )
    op.create_table(
        "claims",
        sa.Column("server_id", sa.String(36), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False, index=True),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("ram_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "claims",
        "host_usage",
        "server_ports",
        "volume_attachments",
        "servers",
        "images",
        "keypairs",
        "flavors",
    ):
        op.drop_table(table)
