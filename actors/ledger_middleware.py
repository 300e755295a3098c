"""Worker middleware that records every job's life in the ledger, idempotently.

before the actor: the job is marked RUNNING (its attempt counted), or the
message is skipped if the job has already ended (a redelivery after a crash,
or a cancelled batch); a part of a fanned-out job runs only while its job is
RUNNING and the batch is not cancelled;
after success: SUCCEEDED with the actor's result (marked partial when the soft
time limit stopped it), CANCELLED when a checkpoint found the batch
cancelled, nothing yet when the job fanned out into parts (the last part
finishes it);
after an error: back to PENDING with the error when Dramatiq will retry, or
FAILED with the reason when it will not (permanent error, hard time limit,
or retries spent — the message is then dead-lettered).

It must sit before Dramatiq's Retries in the middleware list: ``after`` hooks
run in reverse order, so it then sees whether Retries failed the message.

If the ledger cannot record a success, the message is enqueued again (after a
delay) before Dramatiq acks it, so the job runs again rather than staying
RUNNING with its result lost; the rerun is safe because every write is
idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage, TimeLimitExceeded

from actors.job_context import JobCancelled, JobContext, SoftTimeLimitReached, close_job, open_job
from actors.metrics import JOB_CANCELLATIONS, JOB_DEAD_LETTERS, JOB_RETRIES, JOB_SECONDS, record_job_end
from conveyor.blobs import BlobStore
from conveyor.ledger import BatchRecord, JobState, Ledger
from conveyor.settings import Settings

logger = logging.getLogger(__name__)

LEDGER_RETRY_DELAY_MS = 5_000

# Actor options this middleware reads (Dramatiq refuses options no middleware declares).
SOFT_TIME_LIMIT = "soft_time_limit"  # milliseconds
AGGREGATE_PARTS = "aggregate_parts"  # (job result so far, part results) -> job result
Aggregator = Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]
BatchFinished = Callable[[BatchRecord], None]


class LedgerUnavailable(MiddlewareError):
    """The ledger could not mark a job running; the message is retried."""


def describe(exception: BaseException, actor: dramatiq.Actor) -> str:
    """The error as recorded for the client: the message alone for the actor's
    permanent errors (bad input), the exception type too for anything else."""
    if isinstance(exception, TimeLimitExceeded):
        return f"hard time limit of {actor.options['time_limit'] / 1000:g} s exceeded"
    if isinstance(exception, actor.options.get("throws") or ()):
        return str(exception)
    return f"{type(exception).__name__}: {exception}"


def partial(result: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**result, "partial": True, "partial_reason": reason}


class JobLedger(Middleware):
    def __init__(
        self,
        ledger: Ledger,
        blobs: BlobStore,
        settings: Settings,
        on_batch_finished: BatchFinished = lambda batch: None,
    ) -> None:
        self.ledger = ledger
        self.blobs = blobs
        self.settings = settings
        self.on_batch_finished = on_batch_finished

    @property
    def actor_options(self) -> set[str]:
        return {SOFT_TIME_LIMIT, AGGREGATE_PARTS}

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        job_id = message.kwargs.get("job_id")
        if job_id is None:
            return
        part = message.kwargs.get("part")
        try:
            record = self.ledger.start_job(job_id) if part is None else self.ledger.running_job(job_id)
        except Exception as error:
            raise LedgerUnavailable(f"could not mark job {job_id} running: {error}") from error
        if record is None:
            logger.info("job %s has ended or is being cancelled; message %s skipped", job_id, message.message_id)
            raise SkipMessage(job_id)
        soft_limit = broker.get_actor(message.actor_name).options.get(SOFT_TIME_LIMIT)
        open_job(
            JobContext(
                record=record,
                blobs=self.blobs,
                settings=self.settings,
                ledger=self.ledger,
                soft_deadline=time.monotonic() + soft_limit / 1000 if soft_limit else None,
                part=part,
                broker=broker,
                priority=message.options.get("broker_priority", 0),
            )
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        context = close_job()
        if context is None:
            return
        pipeline = context.record.pipeline
        JOB_SECONDS.labels(pipeline).observe(time.monotonic() - context.started)
        actor = broker.get_actor(message.actor_name)
        if exception is None:
            try:
                self._record_outcome(context, actor)
            except Exception:
                logger.exception("could not record the outcome of job %s; it will run again", context.record.id)
                broker.enqueue(message, delay=LEDGER_RETRY_DELAY_MS)
            return
        # Dramatiq has already decided to retry or dead-letter the message; a
        # ledger failure here is logged and the job is settled by the retry
        # (or by the scheduler's stuck-job sweep).
        reason = describe(exception, actor)
        if context.part is not None:
            reason = f"part {context.part}: {reason}"
        if not message.failed:
            JOB_RETRIES.labels(pipeline).inc()
        elif not isinstance(exception, actor.options.get("throws") or ()):  # bad input is the client's, not ours
            JOB_DEAD_LETTERS.labels(pipeline).inc()
        try:
            if message.failed:
                self._finished(context, JobState.FAILED, self.ledger.fail_job(context.record.id, reason))
            elif context.part is None:
                self.ledger.release_job(context.record.id, reason)
        except Exception:
            logger.exception("could not record the failure of job %s", context.record.id)

    def _record_outcome(self, context: JobContext, actor: dramatiq.Actor) -> None:
        job_id = context.record.id
        stopped = context.stopped
        if isinstance(stopped, JobCancelled):
            batch = self.ledger.cancel_job(job_id, "cancelled while running", partial(context.result, "cancelled"))
            if batch is not None:
                JOB_CANCELLATIONS.labels(context.record.pipeline).inc()
            self._finished(context, JobState.CANCELLED, batch)
            return
        result = context.result
        if isinstance(stopped, SoftTimeLimitReached):
            limit = actor.options[SOFT_TIME_LIMIT] / 1000
            result = partial(result, f"soft time limit of {limit:g} s reached")
        if context.part is not None:
            finished = self.ledger.finish_part(job_id, context.part, result)
            if finished is not None:
                self._finish_from_parts(context, finished, actor)
        elif context.fanned_out:
            finished = self.ledger.finished_parts(job_id)  # every part was already done (a rerun)
            if finished is not None:
                self._finish_from_parts(context, finished, actor)
        else:
            self._finished(context, JobState.SUCCEEDED, self.ledger.succeed_job(job_id, result, context.output_sha256))

    def _finish_from_parts(
        self, context: JobContext, finished: tuple[dict[str, Any], list[dict[str, Any]]], actor: dramatiq.Actor
    ) -> None:
        job_result, part_results = finished
        aggregate: Aggregator = actor.options[AGGREGATE_PARTS]
        result = aggregate(job_result, part_results)
        if any(part.get("partial") for part in part_results):
            result = partial(result, "a part reached its soft time limit")
        self._finished(context, JobState.SUCCEEDED, self.ledger.succeed_job(context.record.id, result))

    def _finished(self, context: JobContext, state: JobState, batch: BatchRecord | None) -> None:
        """Count the job's end if this write made it (``batch`` is ``None`` when the
        job had already ended), and tell the owner when it ended the batch (for its webhook)."""
        if batch is None:
            return
        record_job_end(context.record, state, batch)
        if batch.finished_at is not None and batch.webhook_state is not None:
            try:
                self.on_batch_finished(batch)
            except Exception:
                logger.exception("could not hand over the webhook of batch %s; the sweep will send it", batch.id)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        close_job()
