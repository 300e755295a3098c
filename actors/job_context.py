"""What a running job can see: its ledger record, the blob store, the settings,
its result slot, and :meth:`JobContext.checkpoint`.

The ledger middleware opens a context before the actor runs and reads the
result from it afterwards; actors reach it with :func:`current_job`.  One
context per worker thread, since Dramatiq runs one message per thread.

Pipelines call ``checkpoint()`` between steps (pages, chunks, rows).  It stops
the job with :class:`JobCancelled` once its batch has been cancelled, and with
:class:`SoftTimeLimitReached` once the pipeline's soft time limit has passed;
whatever the pipeline put in ``result`` by then is recorded, marked partial.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import dramatiq

from conveyor.blobs import BlobStore
from conveyor.ledger import JobRecord, Ledger
from conveyor.settings import Settings

CANCEL_CHECK_INTERVAL_SECONDS = 0.5

_local = threading.local()


class JobStopped(Exception):
    """The job stopped at a checkpoint on purpose: not an error, never retried."""


class JobCancelled(JobStopped):
    """The job's batch was cancelled."""


class SoftTimeLimitReached(JobStopped):
    """The pipeline's soft time limit passed; the job keeps what it has so far."""


@dataclass
class JobContext:
    record: JobRecord
    blobs: BlobStore
    settings: Settings
    ledger: Ledger
    soft_deadline: float | None = None  # time.monotonic() value
    part: int | None = None  # the part of a fanned-out job this message runs
    broker: dramatiq.Broker | None = None  # to enqueue the parts of a fanned-out job
    priority: int = 0  # the message's RabbitMQ priority, which parts inherit
    result: dict[str, Any] = field(default_factory=dict)
    output_sha256: str | None = None
    fanned_out: bool = False  # the job's parts will finish it
    stopped: JobStopped | None = None  # set when a checkpoint stopped the job
    started: float = field(default_factory=time.monotonic)  # when the worker took the message
    _cancel_checked_at: float = 0.0

    def checkpoint(self) -> None:
        """Raise :class:`JobStopped` if the job must stop here; cheap enough to call often."""
        moment = time.monotonic()
        if self.soft_deadline is not None and moment >= self.soft_deadline:
            raise SoftTimeLimitReached("soft time limit reached")
        if moment - self._cancel_checked_at >= CANCEL_CHECK_INTERVAL_SECONDS:
            self._cancel_checked_at = moment
            if self.ledger.cancel_requested(self.record.batch_id):
                raise JobCancelled("batch cancelled")


def current_job() -> JobContext:
    context = getattr(_local, "context", None)
    if context is None:
        raise RuntimeError("no job is running on this thread (is the JobLedger middleware installed?)")
    return context


def open_job(context: JobContext) -> None:
    _local.context = context


def close_job() -> JobContext | None:
    context, _local.context = getattr(_local, "context", None), None
    return context
