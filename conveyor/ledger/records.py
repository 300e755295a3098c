"""Immutable views of ledger rows handed to callers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor.ledger.schema import BatchStatus, JobState


@dataclass(frozen=True)
class ClientRecord:
    id: str
    name: str
    tier: str
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    disabled_at: datetime | None
    tokens_revoked_before: datetime | None


@dataclass(frozen=True)
class SigningKeyRecord:
    kid: str
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True)
class Revocations:
    """What the ledger says no token may be used for any more."""

    token_ids: frozenset[str]
    clients_revoked_before: dict[str, datetime]


@dataclass(frozen=True)
class NewJob:
    """A job to record in a new batch."""

    pipeline: str
    filename: str
    blob_sha256: str
    size_bytes: int


@dataclass(frozen=True)
class JobRecord:
    id: str
    batch_id: str
    position: int
    pipeline: str
    filename: str
    blob_sha256: str
    size_bytes: int
    state: JobState
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    output_sha256: str | None = None
    parts_total: int | None = None
    parts_done: int = 0


@dataclass(frozen=True)
class BatchRecord:
    id: str
    client_id: str
    status: BatchStatus
    status_reason: str | None
    priority: int
    total_jobs: int
    succeeded_jobs: int
    failed_jobs: int
    cancelled_jobs: int
    created_at: datetime
    published_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    idempotency_key: str | None
    request_fingerprint: str | None
    pipeline_options: dict[str, Any] | None = None
    callback_url: str | None = None
    webhook_state: str | None = None

    @property
    def pending_jobs(self) -> int:
        """Jobs not yet in a final state (queued or running)."""
        return self.total_jobs - self.succeeded_jobs - self.failed_jobs - self.cancelled_jobs

    @property
    def progress_percent(self) -> float:
        if self.total_jobs == 0:
            return 100.0
        return round(100.0 * (self.total_jobs - self.pending_jobs) / self.total_jobs, 1)
