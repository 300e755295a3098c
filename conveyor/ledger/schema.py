"""Ledger tables.  The migrations create them; this module only describes them."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("ledger datetimes must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class BatchStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
    CANCELLED = "CANCELLED"


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class WebhookState(enum.StrEnum):
    PENDING = "PENDING"  # the batch has ended; the callback is to be sent
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # every attempt failed


OPEN_JOB_STATES = (JobState.PENDING, JobState.RUNNING)

clients = Table(
    "clients",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("tier", String(64), nullable=False),
    Column("scopes", String(500), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("disabled_at", UtcDateTime()),
    Column("tokens_revoked_before", UtcDateTime()),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("retired_at", UtcDateTime()),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_revoked_tokens_expires", "expires_at"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(64), ForeignKey("clients.id"), nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_reason", Text),
    Column("priority", Integer, nullable=False),
    Column("total_jobs", Integer, nullable=False),
    Column("succeeded_jobs", Integer, nullable=False, default=0),
    Column("failed_jobs", Integer, nullable=False, default=0),
    Column("cancelled_jobs", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("published_at", UtcDateTime()),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("cancel_requested_at", UtcDateTime()),
    Column("idempotency_key", String(255)),
    Column("request_fingerprint", String(64)),
    Column("pipeline_options", JSON),
    Column("callback_url", Text),
    Column("webhook_state", String(16)),
    Index("ix_batches_client_created", "client_id", "created_at"),
    Index("ix_batches_idempotency", "client_id", "idempotency_key", unique=True),
    Index("ix_batches_finished", "finished_at"),
    Index("ix_batches_created", "created_at"),
    Index("ix_batches_webhook_state", "webhook_state"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("batch_id", String(36), ForeignKey("batches.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("pipeline", String(64), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("blob_sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("state", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("result", JSON),
    Column("error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("output_sha256", String(64)),
    Column("parts_total", Integer),
    Column("parts_done", Integer, nullable=False, default=0),
    Index("ix_jobs_batch_position", "batch_id", "position", unique=True),
    Index("ix_jobs_blob", "blob_sha256"),
    Index("ix_jobs_state_started", "state", "started_at"),
    Index("ix_jobs_output", "output_sha256"),
)

job_parts = Table(
    "job_parts",
    metadata,
    Column("job_id", String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("state", String(32), nullable=False),
    Column("result", JSON),
    Column("finished_at", UtcDateTime()),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(36), ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", UtcDateTime(), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("delivered", Boolean, nullable=False),
    Index("ix_webhook_deliveries_batch", "batch_id", "attempt"),
)

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker_id", String(128), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("queues", String(500), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("jobs_in_progress", Integer, nullable=False),
)

periodic_runs = Table(
    "periodic_runs",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("tick", String(40), primary_key=True),
    Column("claimed_at", UtcDateTime(), nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(64), ForeignKey("clients.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("cron", String(100), nullable=False),
    Column("source_kind", String(16), nullable=False),
    Column("source", String(1000), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("next_run_at", UtcDateTime(), nullable=False),
    Column("last_run_at", UtcDateTime()),
    Column("last_batch_id", String(36)),
    Index("ix_schedules_due", "enabled", "next_run_at"),
)

watched_directories = Table(
    "watched_directories",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("path", String(1000), nullable=False, unique=True),
    Column("client_id", String(64), ForeignKey("clients.id"), nullable=False),
    Column("recursive", Boolean, nullable=False),
    Column("extensions", String(500), nullable=False),
    Column("settle_seconds", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

watched_files = Table(
    "watched_files",
    metadata,
    Column("directory_id", String(36), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("batch_id", String(36), nullable=False),
    Column("submitted_at", UtcDateTime(), nullable=False),
)
