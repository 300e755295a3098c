"""Worker middleware that records every job's life in the ledger, idempotently.

before the actor: the job is marked RUNNING (its attempt counted), or the
message is skipped if the job has already ended (a redelivery after a crash,
or a cancelled batch);
after success: SUCCEEDED with the actor's result;
after an error: back to PENDING with the error when Dramatiq will retry, or
FAILED with the reason when it will not (permanent error or retries spent).

It must sit before Dramatiq's Retries in the middleware list: ``after`` hooks
run in reverse order, so it then sees whether Retries failed the message.

If the ledger cannot record a success, the message is enqueued again (after a
delay) before Dramatiq acks it, so the job runs again rather than staying
RUNNING with its result lost; the rerun is safe because every write is
idempotent.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from actors.job_context import JobContext, close_job, open_job
from conveyor.blobs import BlobStore
from conveyor.ledger import Ledger
from conveyor.settings import Settings

logger = logging.getLogger(__name__)


LEDGER_RETRY_DELAY_MS = 5_000


class LedgerUnavailable(MiddlewareError):
    """The ledger could not mark a job running; the message is retried."""


def describe(exception: BaseException, permanent: tuple[type[BaseException], ...]) -> str:
    """The error as recorded for the client: the message alone for the actor's
    permanent errors (bad input), the exception type too for anything else."""
    if isinstance(exception, permanent):
        return str(exception)
    return f"{type(exception).__name__}: {exception}"


class JobLedger(Middleware):
    def __init__(self, ledger: Ledger, blobs: BlobStore, settings: Settings) -> None:
        self.ledger = ledger
        self.blobs = blobs
        self.settings = settings

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        job_id = message.kwargs.get("job_id")
        if job_id is None:
            return
        try:
            record = self.ledger.start_job(job_id)
        except Exception as error:
            raise LedgerUnavailable(f"could not mark job {job_id} running: {error}") from error
        if record is None:
            logger.info("job %s has already ended (or is unknown); message %s skipped", job_id, message.message_id)
            raise SkipMessage(job_id)
        open_job(JobContext(record=record, blobs=self.blobs, settings=self.settings))

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
        job_id = context.record.id
        if exception is None:
            try:
                self.ledger.succeed_job(job_id, context.result)
            except Exception:
                logger.exception("could not record the result of job %s; it will run again", job_id)
                broker.enqueue(message, delay=LEDGER_RETRY_DELAY_MS)
            return
        # Dramatiq has already decided to retry or dead-letter the message; a
        # ledger failure here is logged and the job is settled by the retry.
        reason = describe(exception, broker.get_actor(message.actor_name).options.get("throws") or ())
        try:
            if message.failed:
                self.ledger.fail_job(job_id, reason)
            else:
                self.ledger.release_job(job_id, reason)
        except Exception:
            logger.exception("could not record the failure of job %s", job_id)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        close_job()
