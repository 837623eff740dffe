"""The volume branch starts on top of the chassis tables.

Revision ID: volume_0001
Revises:
Branch labels: volume
"""

from __future__ import annotations

revision = "volume_0001"
down_revision = None
branch_labels = ("volume",)
depends_on = "chassis_0001"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
