"""Batches: upload, list, read, cancel, retry.

Publishing is ordered so that no job is ever published but unrecorded, or
recorded and silently never published:

1. the queue's backlog and the client's quota are checked (nothing read yet);
2. every file is streamed to the blob store;
3. the batch and its jobs are committed in one transaction (state PENDING);
4. one message per job is published, each confirmed by RabbitMQ;
5. the batch is marked published and the client gets 202.

If step 4 fails, the batch is cancelled with the reason recorded (messages
already published for it are skipped by the workers, whose ledger middleware
never runs a cancelled job), its idempotency key is released, and the client
gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.ledger import BatchRecord, BatchStatus, DuplicateIdempotencyKey, JobRecord, JobState, NewJob
from conveyor.ledger.schema import WebhookState
from conveyor.pipelines import PIPELINES, webhook_message
from conveyor.tiers import Tier, TierError
from conveyor.access_tokens import Principal
from gateway.authentication import authenticate
from gateway.batch_options import batch_options, requested_pipeline
from gateway.errors import ApiError
from gateway.metrics import BACKPRESSURE_REJECTIONS, JOBS_PUBLISHED, UPLOAD_BYTES, UPLOAD_FILES
from gateway.paging import decode_cursor, encode_cursor, page_size
from gateway.publisher import BrokerUnavailable
from gateway.services import GatewayServices, services
from gateway.uploads import ReceivedFile, UploadLimits, receive_upload
from gateway.views import batch_path, batch_view

logger = logging.getLogger(__name__)

READ_SCOPE = "batches:read"
WRITE_SCOPE = "batches:write"
PUBLISH_RETRY_AFTER_SECONDS = 10
BACKLOG_RETRY_AFTER_SECONDS = 30
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _tier(gateway: GatewayServices, principal: Principal) -> Tier:
    try:
        return gateway.tiers[principal.tier]
    except TierError as error:
        raise ApiError(403, "unknown_tier", f"{error}; ask an operator to move this client") from None


async def get_limits(request: Request) -> JSONResponse:
    """The caller's tier and what it allows: what a client checks before it uploads."""
    tier = _tier(services(request), authenticate(request, READ_SCOPE))
    return JSONResponse(
        {
            "tier": tier.name,
            "priority": tier.priority,
            "upload_rate": tier.upload_rate,
            "read_rate": tier.read_rate,
            "max_files_per_batch": tier.max_files_per_batch,
            "max_file_bytes": tier.max_file_bytes,
            "max_pending_jobs": tier.max_pending_jobs,
            "retention_days": tier.retention_days,
        }
    )


def _refused(error: ApiError) -> ApiError:
    """``error``, counted as work refused to protect the queues (a backpressure metric)."""
    BACKPRESSURE_REJECTIONS.labels(error.error).inc()
    return error


def _broker_unavailable() -> ApiError:
    return _refused(
        ApiError(
            503, "broker_unavailable", "the job broker is unavailable; nothing was queued, retry later",
            headers={"Retry-After": str(PUBLISH_RETRY_AFTER_SECONDS)},
        )
    )


async def _admit(gateway: GatewayServices, client_id: str, tier: Tier, queue_name: str) -> int:
    """Refuse work before reading it when the queue or the client's quota is
    full; returns the client's open jobs."""
    try:
        backlog = await gateway.publisher.ready_messages(queue_name)
    except BrokerUnavailable as error:
        logger.error("work refused: %s", error)
        raise _broker_unavailable() from None
    if backlog > gateway.settings.max_ready_messages:
        raise _refused(
            ApiError(
                503, "backlog_full",
                f"the {queue_name} queue holds {backlog} waiting jobs (cap {gateway.settings.max_ready_messages}); "
                "retry later",
                headers={"Retry-After": str(BACKLOG_RETRY_AFTER_SECONDS)},
            )
        )
    open_jobs = await gateway.read_ledger(gateway.ledger.open_jobs, client_id)
    if open_jobs >= tier.max_pending_jobs:
        raise _quota_exceeded(open_jobs, 0, tier)
    return open_jobs


def _quota_exceeded(open_jobs: int, new_jobs: int, tier: Tier) -> ApiError:
    wanted = f" and this request adds {new_jobs}" if new_jobs else ""
    return _refused(
        ApiError(
            429, "quota_exceeded",
            f"you have {open_jobs} queued or running jobs{wanted}; the {tier.name} tier allows {tier.max_pending_jobs} "
            "at once: wait for some to finish",
        )
    )


async def _publish(gateway: GatewayServices, jobs: list[JobRecord], tier: Tier, priority: int) -> None:
    messages = [PIPELINES[job.pipeline].job_message(job.id, priority) for job in jobs]
    await gateway.publisher.publish(messages)
    for message in messages:
        JOBS_PUBLISHED.labels(message.queue_name, tier.name).inc()


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
    return key


def _fingerprint(files: list[ReceivedFile]) -> str:
    """What makes two uploads the same request: their files' names and contents, in order."""
    return hashlib.sha256(json.dumps([[f.filename, f.blob_sha256] for f in files]).encode()).hexdigest()


def _check_same_upload(earlier: BatchRecord, fingerprint: str, key: str) -> None:
    if earlier.request_fingerprint != fingerprint:
        raise ApiError(
            409, "idempotency_conflict",
            f"Idempotency-Key {key!r} was used for a different upload (batch {earlier.id}); use a new key",
        )


async def _finish_publishing(gateway: GatewayServices, batch: BatchRecord, tier: Tier) -> None:
    """Publish the waiting jobs of a batch whose first request stopped before it
    was marked published (its replica died, the client retried with the same
    key).  If that request is in fact still publishing, a job gets a second
    message; the ledger runs and records a job once, so this only costs a skip."""
    jobs = await gateway.read_ledger(gateway.ledger.list_jobs, batch.id)
    try:
        await _publish(gateway, [job for job in jobs if job.state is JobState.PENDING], tier, batch.priority)
    except BrokerUnavailable as error:
        logger.error("batch %s still not queued: %s", batch.id, error)
        raise _broker_unavailable() from None
    await run_in_threadpool(gateway.ledger.mark_published, batch.id)


def _replay(earlier: BatchRecord) -> JSONResponse:
    view = batch_view(earlier)
    return JSONResponse(view, status_code=202, headers={"Location": view["links"]["self"], "Idempotent-Replayed": "true"})


def withdraw_blobs(gateway: GatewayServices, digests: list[str]) -> None:
    """Roll back the blobs a refused upload added: those no job refers to are deleted.

    Known limit: an identical upload that found the blob already stored and has
    not yet committed its rows can lose it; both uploads must race within
    milliseconds and one of them must be refused.
    """
    if not digests:
        return
    for digest in set(digests) - gateway.ledger.referenced_blobs(digests):
        gateway.blobs.delete(digest)


async def create_batch(request: Request) -> JSONResponse:
    principal = authenticate(request, WRITE_SCOPE)
    gateway = services(request)
    tier = _tier(gateway, principal)
    key = _idempotency_key(request)
    pipeline = requested_pipeline(request)
    ledger = gateway.ledger
    earlier = key and await gateway.read_ledger(ledger.find_by_idempotency_key, principal.client_id, key)
    route = PIPELINES[pipeline]
    open_jobs = 0 if earlier else await _admit(gateway, principal.client_id, tier, route.queue_name)
    limits = UploadLimits(max_files=tier.max_files_per_batch, max_file_bytes=tier.max_file_bytes)
    created: list[str] = []
    try:
        upload = await receive_upload(request, gateway.blobs, limits, created)
        files = upload.files
        options = batch_options(pipeline, upload.fields)
        fingerprint = _fingerprint(files)
        if earlier:
            _check_same_upload(earlier, fingerprint, key)
            if earlier.published_at is None and earlier.status is BatchStatus.PENDING:
                await _finish_publishing(gateway, earlier, tier)
            return _replay(earlier)
        if open_jobs + len(files) > tier.max_pending_jobs:
            raise _quota_exceeded(open_jobs, len(files), tier)
        new_jobs = [
            NewJob(pipeline=pipeline, filename=f.filename, blob_sha256=f.blob_sha256, size_bytes=f.size_bytes)
            for f in files
        ]
        try:
            batch, jobs = await run_in_threadpool(
                ledger.create_batch,
                principal.client_id,
                tier.priority,
                new_jobs,
                key,
                fingerprint,
                options.pipeline_options,
                options.callback_url,
            )
        except DuplicateIdempotencyKey:  # a concurrent request with the same key won the race
            earlier = await run_in_threadpool(ledger.find_by_idempotency_key, principal.client_id, key)
            _check_same_upload(earlier, fingerprint, key)
            return _replay(earlier)
    except BaseException:
        await run_in_threadpool(withdraw_blobs, gateway, created)
        raise
    try:
        await _publish(gateway, jobs, tier, batch.priority)
    except BrokerUnavailable as error:
        logger.error("batch %s not queued: %s", batch.id, error)
        reason = "not queued: the job broker was unavailable when the batch was uploaded"
        await run_in_threadpool(ledger.cancel_batch, batch.id, reason)
        await run_in_threadpool(ledger.release_idempotency_key, batch.id)
        raise _broker_unavailable() from None
    await run_in_threadpool(ledger.mark_published, batch.id)
    UPLOAD_FILES.labels(tier.name).inc(len(files))
    UPLOAD_BYTES.labels(tier.name).inc(sum(f.size_bytes for f in files))
    view = batch_view(batch)
    return JSONResponse(view, status_code=202, headers={"Location": view["links"]["self"]})


def status_filter(request: Request) -> BatchStatus | None:
    """``?status=`` as a batch status (any case); 400 for anything else."""
    raw = request.query_params.get("status")
    if raw is None:
        return None
    try:
        return BatchStatus(raw.upper())
    except ValueError:
        known = ", ".join(status.value for status in BatchStatus)
        raise ApiError(400, "invalid_parameter", f"status must be one of {known}") from None


async def list_batches(request: Request) -> JSONResponse:
    """The caller's batches, newest first, ``limit`` at a time, optionally of one ``status``."""
    principal = authenticate(request, READ_SCOPE)
    status, limit, cursor = status_filter(request), page_size(request), decode_cursor(request)
    before = None
    if cursor is not None:
        try:
            before = (datetime.fromisoformat(cursor[0]), str(cursor[1]))
        except (IndexError, TypeError, ValueError):
            raise ApiError(400, "invalid_cursor", "cursor is not one this API returned; start again without it") from None
    gateway = services(request)
    found = await gateway.read_ledger(gateway.ledger.list_batches, principal.client_id, status, limit + 1, before)
    page = found[:limit]
    next_cursor = encode_cursor([page[-1].created_at.isoformat(), page[-1].id]) if len(found) > limit else None
    return JSONResponse({"batches": [batch_view(batch) for batch in page], "next_cursor": next_cursor})


async def owned_batch(request: Request, scope: str) -> BatchRecord:
    """The batch named in the path, if the caller owns it; 404 otherwise (whoever owns it)."""
    principal = authenticate(request, scope)
    batch_id = request.path_params["batch_id"]
    gateway = services(request)
    batch = await gateway.read_ledger(gateway.ledger.get_batch, batch_id, principal.client_id)
    if batch is None:
        raise ApiError(404, "not_found", f"no batch {batch_id}")
    return batch


async def get_batch(request: Request) -> JSONResponse:
    return JSONResponse(batch_view(await owned_batch(request, READ_SCOPE)))


async def cancel_batch(request: Request) -> JSONResponse:
    """Pending jobs never run; running jobs stop at their next checkpoint; the batch ends CANCELLED."""
    batch = await owned_batch(request, WRITE_SCOPE)
    if batch.finished_at is not None:
        raise ApiError(409, "batch_finished", f"batch {batch.id} already ended as {batch.status}")
    gateway = services(request)
    cancelled = await run_in_threadpool(gateway.ledger.cancel_batch, batch.id, "cancelled by the client")
    if cancelled.finished_at is not None and cancelled.webhook_state == WebhookState.PENDING:
        try:
            await gateway.publisher.publish([webhook_message(cancelled.id)])
        except BrokerUnavailable as error:  # the scheduler's webhook sweep sends it later
            logger.warning("webhook of cancelled batch %s not queued: %s", cancelled.id, error)
    return JSONResponse(batch_view(cancelled), status_code=202)


async def retry_batch(request: Request) -> JSONResponse:
    """Queue the batch's failed jobs again."""
    batch = await owned_batch(request, WRITE_SCOPE)
    gateway = services(request)
    if batch.cancel_requested_at is not None:
        raise ApiError(409, "batch_cancelled", f"batch {batch.id} was cancelled; upload the documents again")
    if batch.failed_jobs == 0:
        raise ApiError(409, "nothing_to_retry", f"batch {batch.id} has no failed jobs")
    tier = _tier(gateway, authenticate(request, WRITE_SCOPE))
    (first_job,) = await run_in_threadpool(gateway.ledger.list_jobs, batch.id, -1, 1)
    open_jobs = await _admit(gateway, batch.client_id, tier, PIPELINES[first_job.pipeline].queue_name)
    if open_jobs + batch.failed_jobs > tier.max_pending_jobs:
        raise _quota_exceeded(open_jobs, batch.failed_jobs, tier)
    reopened = await run_in_threadpool(gateway.ledger.reopen_failed_jobs, batch.id)
    try:
        await _publish(gateway, reopened, tier, batch.priority)
    except BrokerUnavailable as error:
        logger.error("retry of batch %s not queued: %s", batch.id, error)
        for job in reopened:
            await run_in_threadpool(gateway.ledger.fail_job, job.id, "retry not queued: the job broker was unavailable")
        raise _broker_unavailable() from None
    refreshed = await run_in_threadpool(gateway.ledger.get_batch, batch.id, batch.client_id)
    return JSONResponse(
        {"batch": batch_view(refreshed), "retried_jobs": [job.id for job in reopened]},
        status_code=202,
        headers={"Location": batch_path(batch.id)},
    )
