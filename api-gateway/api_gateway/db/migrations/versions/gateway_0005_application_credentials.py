"""Application credentials (a hashed secret, a project, the roles its tokens may carry),
and the credential a token was got with (its tokens go when it goes).

Revision ID: gateway_0005
Revises: gateway_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gateway_0005"
down_revision = "gateway_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "application_credentials",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "project_id",
            sa.String(64),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unrestricted", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("user_id", "name", name="uq_application_credentials_user_name"),
    )
    op.create_index("ix_application_credentials_user_id", "application_credentials", ["user_id"])
    op.create_index(
        "ix_application_credentials_project_id", "application_credentials", ["project_id"]
    )
    op.create_table(
        "application_credential_roles",
        sa.Column(
            "application_credential_id",
            sa.String(64),
            sa.ForeignKey("application_credentials.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "role_id",
            sa.String(64),
            sa.ForeignKey("roles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    # Batch mode: SQLite adds a foreign key only by copying the table.
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("application_credential_id", sa.String(64), nullable=True))
        batch.create_foreign_key(
            "fk_tokens_application_credential_id",
            "application_credentials",
            ["application_credential_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_tokens_application_credential_id", ["application_credential_id"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_application_credential_id")
        batch.drop_constraint("fk_tokens_application_credential_id", type_="foreignkey")
        batch.drop_column("application_credential_id")
    op.drop_table("application_credential_roles")
    op.drop_table("application_credentials")
