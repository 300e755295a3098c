"""JSON shapes of batches and jobs, as every endpoint returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conveyor.ledger import BatchRecord, JobRecord


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def batch_path(batch_id: str) -> str:
    return f"/api/v1/batches/{batch_id}"


def batch_view(batch: BatchRecord) -> dict[str, Any]:
    path = batch_path(batch.id)
    return {
        "id": batch.id,
        "status": batch.status,
        "status_reason": batch.status_reason,
        "counts": {
            "total": batch.total_jobs,
            "succeeded": batch.succeeded_jobs,
            "failed": batch.failed_jobs,
            "cancelled": batch.cancelled_jobs,
            "pending": batch.pending_jobs,
        },
        "progress_percent": batch.progress_percent,
        "created_at": _iso(batch.created_at),
        "started_at": _iso(batch.started_at),
        "finished_at": _iso(batch.finished_at),
        "cancel_requested_at": _iso(batch.cancel_requested_at),
        "callback_url": batch.callback_url,
        "webhook_state": batch.webhook_state,
        "links": {"self": path, "results": f"{path}/results", "report": f"{path}/report"},
    }


def job_view(job: JobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
        "batch_id": job.batch_id,
        "position": job.position,
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "sha256": job.blob_sha256,
        "pipeline": job.pipeline,
        "state": job.state,
        "attempts": job.attempts,
        "error": job.error,
        "result": job.result,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "links": {"self": f"/api/v1/jobs/{job.id}", "batch": batch_path(job.batch_id)},
    }
