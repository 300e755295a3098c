"""What a running job can see: its ledger record, the blob store, the settings
and its result slot.

The ledger middleware opens a context before the actor runs and reads the
result from it afterwards; actors reach it with :func:`current_job`.  One
context per worker thread, since Dramatiq runs one message per thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from conveyor.blobs import BlobStore
from conveyor.ledger import JobRecord
from conveyor.settings import Settings

_local = threading.local()


@dataclass
class JobContext:
    record: JobRecord
    blobs: BlobStore
    settings: Settings
    result: dict[str, Any] = field(default_factory=dict)


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
