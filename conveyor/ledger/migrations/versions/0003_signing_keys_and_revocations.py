"""Signing keys (by kid), revoked tokens, and per-client token cut-off.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from conveyor.ledger.schema import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("retired_at", UtcDateTime()),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires", "revoked_tokens", ["expires_at"])
    with op.batch_alter_table("clients") as clients:
        clients.add_column(sa.Column("tokens_revoked_before", UtcDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("clients") as clients:
        clients.drop_column("tokens_revoked_before")
    op.drop_table("revoked_tokens")
    op.drop_table("signing_keys")
