"""Ports the cloud made itself: a network's DHCP port, a router's gateway, a floating IP's
holder. A tenant may give its own port any device_owner (``network:dhcp`` on its own
network, as Neutron allows), so the owner string cannot tell the cloud's ports apart.

Revision ID: network_0006
Revises: network_0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "network_0006"
down_revision = "network_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ports",
        sa.Column("service_owned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # The DHCP ports made so far carry the device id dhcp.ensure_address gives them.
    op.execute(
        "UPDATE ports SET service_owned = true WHERE device_owner = 'network:dhcp' "
        "AND device_id = 'dhcp-' || network_id"
    )
    op.execute(
        "UPDATE ports SET service_owned = true WHERE id IN "
        "(SELECT gw_port_id FROM routers WHERE gw_port_id IS NOT NULL) "
        "OR id IN (SELECT floating_port_id FROM floatingips)"
    )


def downgrade() -> None:
    with op.batch_alter_table("ports") as batch:
        batch.drop_column("service_owned")
