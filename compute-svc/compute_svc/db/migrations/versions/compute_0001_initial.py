"""The compute branch starts on top of the chassis tables.

Revision ID: compute_0001
Revises:
Branch labels: compute
"""

from __future__ import annotations

revision = "compute_0001"
down_revision = None
branch_labels = ("compute",)
depends_on = "chassis_0001"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
