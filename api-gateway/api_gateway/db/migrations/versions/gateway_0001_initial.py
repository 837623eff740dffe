"""The gateway branch starts on top of the chassis tables.

Revision ID: gateway_0001
Revises:
Branch labels: gateway
"""

from __future__ import annotations

revision = "gateway_0001"
down_revision = None
branch_labels = ("gateway",)
depends_on = "chassis_0001"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
