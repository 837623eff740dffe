"""The network branch starts on top of the chassis tables.

Revision ID: network_0001
Revises:
Branch labels: network
"""

from __future__ import annotations

revision = "network_0001"
down_revision = None
branch_labels = ("network",)
depends_on = "chassis_0001"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
