"""The ledger: every state change of clients, batches and jobs goes through here.

Job transitions are conditional updates (``... WHERE state IN (open states)``),
so applying the same outcome twice — a redelivered message, a worker killed
after writing but before acking — changes nothing the second time, and a
batch's counters move exactly once per job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.access import AccessLedger, now
from conveyor.ledger.records import BatchRecord, JobRecord, NewJob
from conveyor.ledger.schema import (
    OPEN_JOB_STATES,
    BatchStatus,
    JobState,
    WebhookState,
    batches,
    job_parts,
    jobs,
)

_FINISHED_COUNTER = {
    JobState.SUCCEEDED: batches.c.succeeded_jobs,
    JobState.FAILED: batches.c.failed_jobs,
    JobState.CANCELLED: batches.c.cancelled_jobs,
}


def _batch(row: Row) -> BatchRecord:
    values = row._asdict()
    values["status"] = BatchStatus(values["status"])
    return BatchRecord(**values)


def _job(row: Row) -> JobRecord:
    values = row._asdict()
    values["state"] = JobState(values["state"])
    return JobRecord(**values)


# Hot reads, built once: building a statement per call costs more than running it.
_BATCH_OF_CLIENT = select(batches).where(
    batches.c.id == bindparam("batch_id"), batches.c.client_id == bindparam("client_id")
)
_CANCEL_REQUESTED = select(batches.c.cancel_requested_at).where(batches.c.id == bindparam("batch_id"))
_JOB_OF_CLIENT = (
    select(jobs)
    .join(batches, batches.c.id == jobs.c.batch_id)
    .where(jobs.c.id == bindparam("job_id"), batches.c.client_id == bindparam("client_id"))
)


class DuplicateIdempotencyKey(Exception):
    """The client already created a batch with this idempotency key."""


def final_status(total: int, succeeded: int, failed: int, cancelled: int) -> BatchStatus:
    """The status of a batch all of whose jobs have ended."""
    if succeeded == total:
        return BatchStatus.COMPLETED
    if cancelled:
        return BatchStatus.CANCELLED
    if failed == total:
        return BatchStatus.FAILED
    return BatchStatus.PARTIALLY_COMPLETED


class Ledger(AccessLedger):
    """Batches and jobs (this module) plus clients, keys and revocations (:mod:`.access`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ping(self) -> None:
        """Raise if the database cannot answer a query."""
        with read_transaction(self.engine) as connection:
            connection.execute(text("SELECT 1"))

    # Batches

    def create_batch(
        self,
        client_id: str,
        priority: int,
        new_jobs: Sequence[NewJob],
        idempotency_key: str | None = None,
        request_fingerprint: str | None = None,
        pipeline_options: dict[str, Any] | None = None,
        callback_url: str | None = None,
    ) -> tuple[BatchRecord, list[JobRecord]]:
        """Record a batch and all its jobs in one transaction (nothing published yet).

        Raises :class:`DuplicateIdempotencyKey` if the client already used ``idempotency_key``.
        """
        moment = now()
        batch_id = str(uuid.uuid4())
        batch_values = {
            "id": batch_id,
            "client_id": client_id,
            "status": BatchStatus.PENDING,
            "priority": priority,
            "total_jobs": len(new_jobs),
            "succeeded_jobs": 0,
            "failed_jobs": 0,
            "cancelled_jobs": 0,
            "created_at": moment,
            "idempotency_key": idempotency_key,
            "request_fingerprint": request_fingerprint,
            "pipeline_options": pipeline_options,
            "callback_url": callback_url,
            "webhook_state": None,
        }
        job_values = [
            {
                "id": str(uuid.uuid4()),
                "batch_id": batch_id,
                "position": position,
                "pipeline": job.pipeline,
                "filename": job.filename,
                "blob_sha256": job.blob_sha256,
                "size_bytes": job.size_bytes,
                "state": JobState.PENDING,
                "attempts": 0,
                "result": None,
                "error": None,
                "created_at": moment,
                "started_at": None,
                "finished_at": None,
                "output_sha256": None,
                "parts_total": None,
                "parts_done": 0,
            }
            for position, job in enumerate(new_jobs)
        ]
        try:
            with write_transaction(self.engine) as connection:
                row = connection.execute(insert(batches).returning(*batches.c), batch_values).one()
                if job_values:
                    connection.execute(insert(jobs), job_values)
        except IntegrityError:
            if idempotency_key is not None and self.find_by_idempotency_key(client_id, idempotency_key):
                raise DuplicateIdempotencyKey(idempotency_key) from None
            raise
        return _batch(row), [JobRecord(**values) for values in job_values]

    def release_idempotency_key(self, batch_id: str) -> None:
        """Free the key of a batch that was never accepted, so the client can retry with it."""
        with write_transaction(self.engine) as connection:
            connection.execute(update(batches).where(batches.c.id == batch_id).values(idempotency_key=None))

    def find_by_idempotency_key(self, client_id: str, key: str) -> BatchRecord | None:
        with read_transaction(self.engine) as connection:
            row = connection.execute(
                select(batches).where(batches.c.client_id == client_id, batches.c.idempotency_key == key)
            ).first()
        return _batch(row) if row else None

    def list_batches(
        self, client_id: str, status: BatchStatus | None, limit: int, before: tuple[datetime, str] | None
    ) -> list[BatchRecord]:
        """The client's batches, newest first; ``before`` is the (created_at, id) of the last one already seen."""
        query = select(batches).where(batches.c.client_id == client_id)
        if status is not None:
            query = query.where(batches.c.status == status)
        if before is not None:
            created_at, batch_id = before
            query = query.where(
                or_(
                    batches.c.created_at < created_at,
                    and_(batches.c.created_at == created_at, batches.c.id < batch_id),
                )
            )
        query = query.order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(limit)
        with read_transaction(self.engine) as connection:
            return [_batch(row) for row in connection.execute(query)]

    def mark_published(self, batch_id: str) -> None:
        """Record that every job message of the batch was confirmed by the broker."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.published_at.is_(None))
                .values(published_at=now())
            )

    def abandoned_batch_ids(self, created_before: datetime) -> list[str]:
        """Batches recorded before ``created_before`` whose publishing never
        completed (the gateway died between commit and confirm)."""
        with read_transaction(self.engine) as connection:
            rows = connection.execute(
                select(batches.c.id).where(
                    batches.c.published_at.is_(None),
                    batches.c.finished_at.is_(None),
                    batches.c.cancel_requested_at.is_(None),
                    batches.c.created_at < created_before,
                )
            )
            return [row.id for row in rows]

    def cancel_batch(self, batch_id: str, reason: str) -> BatchRecord:
        """Record the cancellation and cancel every job that has not started.

        Running jobs end on their own (workers check the request between
        steps); the batch settles as CANCELLED when the last one ends.  A batch
        that has already ended is returned unchanged.
        """
        moment = now()
        with write_transaction(self.engine) as connection:
            requested = connection.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.finished_at.is_(None))
                .values(cancel_requested_at=func.coalesce(batches.c.cancel_requested_at, moment), status_reason=reason)
            ).rowcount
            if not requested:
                return _batch(connection.execute(select(batches).where(batches.c.id == batch_id)).one())
            cancelled = connection.execute(
                update(jobs)
                .where(jobs.c.batch_id == batch_id, jobs.c.state == JobState.PENDING)
                .values(state=JobState.CANCELLED, error=reason, finished_at=moment)
            ).rowcount
            return self._count_finished(connection, batch_id, JobState.CANCELLED, cancelled)

    def reopen_failed_jobs(self, batch_id: str) -> list[JobRecord]:
        """Put the batch's FAILED jobs back to PENDING for another run; returns them."""
        with write_transaction(self.engine) as connection:
            rows = connection.execute(
                update(jobs)
                .where(jobs.c.batch_id == batch_id, jobs.c.state == JobState.FAILED)
                .values(
                    state=JobState.PENDING,
                    error=None,
                    result=None,
                    output_sha256=None,
                    parts_total=None,
                    parts_done=0,
                    finished_at=None,
                )
                .returning(*jobs.c)
            ).all()
            if rows:
                connection.execute(delete(job_parts).where(job_parts.c.job_id.in_([row.id for row in rows])))
                connection.execute(
                    update(batches)
                    .where(batches.c.id == batch_id)
                    .values(
                        failed_jobs=batches.c.failed_jobs - len(rows),
                        status=BatchStatus.PROCESSING,
                        finished_at=None,
                        webhook_state=None,
                    )
                )
        return sorted((_job(row) for row in rows), key=lambda job: job.position)

    def open_jobs(self, client_id: str) -> int:
        """Jobs of the client that are queued or running (from batch counters, no job scan)."""
        open_per_batch = (
            batches.c.total_jobs - batches.c.succeeded_jobs - batches.c.failed_jobs - batches.c.cancelled_jobs
        )
        with read_transaction(self.engine) as connection:
            total = connection.execute(
                select(func.coalesce(func.sum(open_per_batch), 0)).where(
                    batches.c.client_id == client_id, batches.c.finished_at.is_(None)
                )
            ).scalar_one()
        return int(total)

    def get_batch(self, batch_id: str, client_id: str) -> BatchRecord | None:
        """The batch if it exists and belongs to ``client_id``."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(_BATCH_OF_CLIENT, {"batch_id": batch_id, "client_id": client_id}).first()
        return _batch(row) if row else None

    def find_batch(self, batch_id: str) -> BatchRecord | None:
        """The batch, whoever owns it (for workers and operators)."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(select(batches).where(batches.c.id == batch_id)).first()
        return _batch(row) if row else None

    def list_jobs(self, batch_id: str, after_position: int = -1, limit: int | None = None) -> list[JobRecord]:
        """The batch's jobs in upload order, from ``after_position + 1``."""
        query = (
            select(jobs)
            .where(jobs.c.batch_id == batch_id, jobs.c.position > after_position)
            .order_by(jobs.c.position)
            .limit(limit)
        )
        with read_transaction(self.engine) as connection:
            return [_job(row) for row in connection.execute(query)]

    def referenced_blobs(self, digests: Sequence[str]) -> set[str]:
        """Those of ``digests`` that some job refers to."""
        with read_transaction(self.engine) as connection:
            rows = connection.execute(select(jobs.c.blob_sha256).where(jobs.c.blob_sha256.in_(list(digests))).distinct())
            return {row.blob_sha256 for row in rows}

    def get_job(self, job_id: str, client_id: str) -> JobRecord | None:
        """The job if it exists and its batch belongs to ``client_id``."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(_JOB_OF_CLIENT, {"job_id": job_id, "client_id": client_id}).first()
        return _job(row) if row else None

    # Job transitions (workers)

    def cancel_requested(self, batch_id: str) -> bool:
        """Whether the batch's cancellation has been asked for (workers poll this at checkpoints)."""
        with read_transaction(self.engine) as connection:
            return connection.execute(_CANCEL_REQUESTED, {"batch_id": batch_id}).scalar() is not None

    def start_job(self, job_id: str) -> JobRecord | None:
        """Mark a job RUNNING and count the attempt; ``None`` if it already ended or is unknown.

        A job whose batch has been cancelled is recorded CANCELLED instead (a
        retry that was waiting in the delay queue when the cancel came).
        """
        moment = now()
        with write_transaction(self.engine) as connection:
            row = connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state.in_(OPEN_JOB_STATES))
                .values(state=JobState.RUNNING, attempts=jobs.c.attempts + 1, started_at=moment)
                .returning(*jobs.c)
            ).first()
            if row is None:
                return None
            if connection.execute(_CANCEL_REQUESTED, {"batch_id": row.batch_id}).scalar() is not None:
                self._finish_in(connection, job_id, JobState.CANCELLED, error="batch cancelled before the job started")
                return None
            connection.execute(
                update(batches)
                .where(batches.c.id == row.batch_id, batches.c.status == BatchStatus.PENDING)
                .values(status=BatchStatus.PROCESSING, started_at=moment)
            )
        return _job(row)

    def running_job(self, job_id: str) -> JobRecord | None:
        """The job if it is RUNNING and its batch is not being cancelled (for a part of a fanned-out job)."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(
                select(jobs)
                .join(batches, batches.c.id == jobs.c.batch_id)
                .where(jobs.c.id == job_id, jobs.c.state == JobState.RUNNING, batches.c.cancel_requested_at.is_(None))
            ).first()
        return _job(row) if row else None

    def release_job(self, job_id: str, error: str) -> None:
        """A running job failed and will be retried: back to PENDING with the error kept."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == JobState.RUNNING)
                .values(state=JobState.PENDING, error=error)
            )

    def succeed_job(self, job_id: str, result: dict[str, Any], output_sha256: str | None = None) -> BatchRecord | None:
        return self._finish_job(job_id, JobState.SUCCEEDED, result=result, output_sha256=output_sha256)

    def fail_job(self, job_id: str, error: str) -> BatchRecord | None:
        return self._finish_job(job_id, JobState.FAILED, error=error)

    def cancel_job(self, job_id: str, reason: str, result: dict[str, Any] | None = None) -> BatchRecord | None:
        """A running job stopped because its batch was cancelled (``result``: what it had done)."""
        return self._finish_job(job_id, JobState.CANCELLED, result=result, error=reason)

    def _finish_job(self, job_id: str, state: JobState, **values: Any) -> BatchRecord | None:
        """Move an open job to ``state``; the batch after the change, or ``None``
        (and no change) if the job had already ended."""
        with write_transaction(self.engine) as connection:
            return self._finish_in(connection, job_id, state, **values)

    def _finish_in(
        self,
        connection: Connection,
        job_id: str,
        state: JobState,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        output_sha256: str | None = None,
    ) -> BatchRecord | None:
        batch_id = connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state.in_(OPEN_JOB_STATES))
            .values(
                state=state,
                result=result,
                error=error,
                output_sha256=func.coalesce(output_sha256, jobs.c.output_sha256),
                finished_at=now(),
            )
            .returning(jobs.c.batch_id)
        ).scalar()
        if batch_id is None:
            return None
        return self._count_finished(connection, batch_id, state, 1)

    # Fanned-out jobs: one job, several part messages, one aggregated result.

    def fan_out(self, job_id: str, parts_total: int, result: dict[str, Any], output_sha256: str | None) -> list[int]:
        """Record that the RUNNING job continues as ``parts_total`` parts (with
        ``result`` so far); returns the parts not yet done, to be enqueued.
        Idempotent: a rerun of the job finds its parts and re-enqueues the open ones."""
        with write_transaction(self.engine) as connection:
            moved = connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == JobState.RUNNING)
                .values(parts_total=parts_total, result=result, output_sha256=output_sha256)
            ).rowcount
            if not moved:
                return []
            existing = {row.part: row.state for row in connection.execute(
                select(job_parts.c.part, job_parts.c.state).where(job_parts.c.job_id == job_id)
            )}
            missing = [part for part in range(parts_total) if part not in existing]
            if missing:
                connection.execute(
                    insert(job_parts), [{"job_id": job_id, "part": part, "state": JobState.PENDING} for part in missing]
                )
        return [part for part in range(parts_total) if existing.get(part) != JobState.SUCCEEDED]

    def finish_part(
        self, job_id: str, part: int, result: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """Record a part's result.  When this was the last open part, returns the
        job's result so far and every part's result in order (exactly once),
        for the caller to aggregate and finish the job with."""
        with write_transaction(self.engine) as connection:
            moved = connection.execute(
                update(job_parts)
                .where(job_parts.c.job_id == job_id, job_parts.c.part == part, job_parts.c.state != JobState.SUCCEEDED)
                .values(state=JobState.SUCCEEDED, result=result, finished_at=now())
            ).rowcount
            if not moved:
                return None
            job = connection.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(parts_done=jobs.c.parts_done + 1)
                .returning(jobs.c.parts_done, jobs.c.parts_total, jobs.c.result)
            ).one()
            if job.parts_done < job.parts_total:
                return None
            parts = connection.execute(
                select(job_parts.c.result).where(job_parts.c.job_id == job_id).order_by(job_parts.c.part)
            )
            return job.result or {}, [row.result for row in parts]

    def finished_parts(self, job_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """Like :meth:`finish_part`'s answer, for a rerun that finds every part already done."""
        with read_transaction(self.engine) as connection:
            job = connection.execute(select(jobs.c.result, jobs.c.parts_total).where(jobs.c.id == job_id)).first()
            if job is None or job.parts_total is None:
                return None
            parts = connection.execute(
                select(job_parts.c.result)
                .where(job_parts.c.job_id == job_id, job_parts.c.state == JobState.SUCCEEDED)
                .order_by(job_parts.c.part)
            ).all()
        if len(parts) < job.parts_total:
            return None
        return job.result or {}, [row.result for row in parts]

    def _count_finished(self, connection: Connection, batch_id: str, state: JobState, count: int) -> BatchRecord:
        """Add ``count`` jobs ended in ``state`` to the batch; settle its status once all ended."""
        counter = _FINISHED_COUNTER[state]
        row = connection.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values({counter: counter + count})
            .returning(*batches.c)
        ).one()
        ended = row.succeeded_jobs + row.failed_jobs + row.cancelled_jobs
        if ended < row.total_jobs or row.finished_at is not None:
            return _batch(row)
        status = final_status(row.total_jobs, row.succeeded_jobs, row.failed_jobs, row.cancelled_jobs)
        row = connection.execute(
            update(batches)
            .where(batches.c.id == batch_id, batches.c.finished_at.is_(None))
            .values(
                status=status,
                finished_at=now(),
                webhook_state=WebhookState.PENDING if row.callback_url else None,
            )
            .returning(*batches.c)
        ).one()
        return _batch(row)
