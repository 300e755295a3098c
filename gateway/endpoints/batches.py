"""Batches: upload documents, follow their progress, read their results.

Publishing is ordered so that no job is ever published but unrecorded, or
recorded and silently never published:

1. every file is streamed to the blob store;
2. the batch and its jobs are committed in one transaction (state PENDING);
3. one message per job is published, each confirmed by RabbitMQ;
4. the batch is marked published and the client gets 202.

If step 3 fails, the batch is cancelled with the reason recorded (messages
already published for it are skipped by the workers, whose ledger middleware
never runs a cancelled job) and the client gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.ledger import BatchRecord, JobRecord, NewJob
from conveyor.pipelines import DEFAULT_PIPELINE, PIPELINES
from conveyor.tiers import Tier, TierError
from gateway.authentication import authenticate
from gateway.errors import ApiError
from gateway.publisher import BrokerUnavailable
from gateway.services import GatewayServices, services
from gateway.uploads import UploadLimits, receive_files

logger = logging.getLogger(__name__)

READ_SCOPE = "batches:read"
WRITE_SCOPE = "batches:write"
PUBLISH_RETRY_AFTER_SECONDS = 10
BACKLOG_RETRY_AFTER_SECONDS = 30


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None


def batch_view(batch: BatchRecord) -> dict[str, Any]:
    path = f"/api/v1/batches/{batch.id}"
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
        "links": {"self": path, "results": f"{path}/results"},
    }


def job_view(job: JobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
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
    }


async def _admit(gateway: GatewayServices, client_id: str, tier: Tier, queue_name: str) -> int:
    """Refuse an upload before reading it when the queue or the client's quota is full;
    returns the client's open jobs."""
    try:
        backlog = await gateway.publisher.ready_messages(queue_name)
    except BrokerUnavailable as error:
        logger.error("upload refused: %s", error)
        raise ApiError(
            503, "broker_unavailable", "the job broker is unavailable; retry later",
            headers={"Retry-After": str(PUBLISH_RETRY_AFTER_SECONDS)},
        ) from None
    if backlog > gateway.settings.max_ready_messages:
        raise ApiError(
            503, "backlog_full",
            f"the {queue_name} queue holds {backlog} waiting jobs (cap {gateway.settings.max_ready_messages}); retry later",
            headers={"Retry-After": str(BACKLOG_RETRY_AFTER_SECONDS)},
        )
    open_jobs = await run_in_threadpool(gateway.ledger.open_jobs, client_id)
    if open_jobs >= tier.max_pending_jobs:
        raise _quota_exceeded(open_jobs, 0, tier)
    return open_jobs


def _quota_exceeded(open_jobs: int, new_jobs: int, tier: Tier) -> ApiError:
    wanted = f" and this upload holds {new_jobs}" if new_jobs else ""
    return ApiError(
        429, "quota_exceeded",
        f"you have {open_jobs} queued or running jobs{wanted}; the {tier.name} tier allows {tier.max_pending_jobs} "
        "at once: wait for some to finish",
    )


async def create_batch(request: Request) -> JSONResponse:
    principal = authenticate(request, WRITE_SCOPE)
    gateway = services(request)
    try:
        tier = gateway.tiers[principal.tier]
    except TierError as error:
        raise ApiError(403, "unknown_tier", f"{error}; ask an operator to move this client") from None
    route = PIPELINES[DEFAULT_PIPELINE]
    open_jobs = await _admit(gateway, principal.client_id, tier, route.queue_name)
    limits = UploadLimits(max_files=tier.max_files_per_batch, max_file_bytes=tier.max_file_bytes)
    files = await receive_files(request, gateway.blobs, limits)
    if open_jobs + len(files) > tier.max_pending_jobs:
        raise _quota_exceeded(open_jobs, len(files), tier)
    new_jobs = [
        NewJob(pipeline=DEFAULT_PIPELINE, filename=f.filename, blob_sha256=f.blob_sha256, size_bytes=f.size_bytes)
        for f in files
    ]
    batch, jobs = await run_in_threadpool(gateway.ledger.create_batch, principal.client_id, tier.priority, new_jobs)
    messages = [route.job_message(job.id, batch.priority) for job in jobs]
    try:
        await gateway.publisher.publish(messages)
    except BrokerUnavailable as error:
        logger.error("batch %s not queued: %s", batch.id, error)
        reason = "not queued: the job broker was unavailable when the batch was uploaded"
        await run_in_threadpool(gateway.ledger.cancel_batch, batch.id, reason)
        raise ApiError(
            503, "broker_unavailable",
            f"the batch could not be queued and was not accepted (batch {batch.id} is cancelled); retry later",
            headers={"Retry-After": str(PUBLISH_RETRY_AFTER_SECONDS)},
        ) from None
    await run_in_threadpool(gateway.ledger.mark_published, batch.id)
    view = batch_view(batch)
    return JSONResponse(view, status_code=202, headers={"Location": view["links"]["self"]})


async def _owned_batch(request: Request) -> BatchRecord:
    principal = authenticate(request, READ_SCOPE)
    batch_id = request.path_params["batch_id"]
    batch = await run_in_threadpool(services(request).ledger.get_batch, batch_id, principal.client_id)
    if batch is None:
        raise ApiError(404, "not_found", f"no batch {batch_id}")
    return batch


async def get_batch(request: Request) -> JSONResponse:
    return JSONResponse(batch_view(await _owned_batch(request)))


async def get_results(request: Request) -> JSONResponse:
    batch = await _owned_batch(request)
    jobs = await run_in_threadpool(services(request).ledger.list_jobs, batch.id)
    return JSONResponse({"batch": batch_view(batch), "jobs": [job_view(job) for job in jobs]})
