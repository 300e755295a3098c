"""Cancellation requests and idempotency keys on batches.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from conveyor.ledger.schema import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("cancel_requested_at", UtcDateTime()))
        batch.add_column(sa.Column("idempotency_key", sa.String(255)))
        batch.add_column(sa.Column("request_fingerprint", sa.String(64)))
    op.create_index("ix_batches_idempotency", "batches", ["client_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_batches_idempotency", "batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("request_fingerprint")
        batch.drop_column("idempotency_key")
        batch.drop_column("cancel_requested_at")
