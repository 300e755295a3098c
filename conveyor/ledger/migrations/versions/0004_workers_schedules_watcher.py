"""Pipeline options, webhooks, fan-out parts, heartbeats, periodic-run dedupe,
schedules and watched directories.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from conveyor.ledger.schema import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("pipeline_options", sa.JSON()))
        batches.add_column(sa.Column("callback_url", sa.Text()))
        batches.add_column(sa.Column("webhook_state", sa.String(16)))
    op.create_index("ix_batches_finished", "batches", ["finished_at"])
    op.create_index("ix_batches_webhook_state", "batches", ["webhook_state"])
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("output_sha256", sa.String(64)))
        jobs.add_column(sa.Column("parts_total", sa.Integer()))
        jobs.add_column(sa.Column("parts_done", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_jobs_state_started", "jobs", ["state", "started_at"])
    op.create_index("ix_jobs_output", "jobs", ["output_sha256"])
    op.create_table(
        "job_parts",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("part", sa.Integer(), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("result", sa.JSON()),
        sa.Column("finished_at", UtcDateTime()),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("delivered", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_batch", "webhook_deliveries", ["batch_id", "attempt"])
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(128), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.String(500), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("jobs_in_progress", sa.Integer(), nullable=False),
    )
    op.create_table(
        "periodic_runs",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("tick", sa.String(40), primary_key=True),
        sa.Column("claimed_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(64), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(100), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("next_run_at", UtcDateTime(), nullable=False),
        sa.Column("last_run_at", UtcDateTime()),
        sa.Column("last_batch_id", sa.String(36)),
    )
    op.create_index("ix_schedules_due", "schedules", ["enabled", "next_run_at"])
    op.create_table(
        "watched_directories",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("path", sa.String(1000), nullable=False, unique=True),
        sa.Column("client_id", sa.String(64), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("recursive", sa.Boolean(), nullable=False),
        sa.Column("extensions", sa.String(500), nullable=False),
        sa.Column("settle_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "watched_files",
        sa.Column("directory_id", sa.String(36), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("submitted_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("watched_files", "watched_directories", "schedules", "periodic_runs", "worker_heartbeats",
                  "webhook_deliveries", "job_parts"):
        op.drop_table(table)
    op.drop_index("ix_jobs_output", "jobs")
    op.drop_index("ix_jobs_state_started", "jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("parts_done")
        jobs.drop_column("parts_total")
        jobs.drop_column("output_sha256")
    op.drop_index("ix_batches_webhook_state", "batches")
    op.drop_index("ix_batches_finished", "batches")
    with op.batch_alter_table("batches") as batches:
        batches.drop_column("webhook_state")
        batches.drop_column("callback_url")
        batches.drop_column("pipeline_options")
