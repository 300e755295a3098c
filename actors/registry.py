"""Every pipeline's actor, registered under the names in :mod:`conveyor.pipelines`.

Adding a pipeline: write its function in a module of its own, add its route
to ``conveyor.pipelines.PIPELINES`` and its entry here.

Every actor gets the same failure rules: transient errors are retried with
exponential backoff and jitter (Dramatiq's ``compute_backoff``) up to
``max_retries``; the exceptions in ``throws`` (bad input) and the hard time
limit fail the job at once; a checkpoint that stops the job (cancellation,
soft time limit) ends the message normally, so it is never retried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.middleware import TimeLimitExceeded

from actors.chunk_analysis import aggregate_parts
from actors.csv_quality import assess_csv_quality
from actors.document_analysis import UnsupportedDocument
from actors.documents import process_document, process_document_part
from actors.job_context import JobStopped, current_job
from actors.ledger_middleware import AGGREGATE_PARTS, SOFT_TIME_LIMIT
from conveyor.pipelines import CSV_QUALITY_PIPELINE, DEFAULT_PIPELINE, DOCUMENT_PARTS, PIPELINES, PipelineRoute
from conveyor.quality_thresholds import InvalidThresholds

# Well below RabbitMQ's 30-minute consumer timeout, which a message waiting
# in a worker's delay queue would otherwise hit.
MAX_BACKOFF_MS = 5 * 60_000


@dataclass(frozen=True)
class ActorSpec:
    function: Callable[..., None]
    route: PipelineRoute
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def hard_time_limit_seconds(self) -> float:
        return self.options["time_limit"] / 1000

    @property
    def max_attempts(self) -> int:
        return self.options["max_retries"] + 1


_DOCUMENT_OPTIONS = {
    "max_retries": 3,
    "min_backoff": 1_000,
    "max_backoff": MAX_BACKOFF_MS,
    SOFT_TIME_LIMIT: 8 * 60_000,
    "time_limit": 10 * 60_000,
    "throws": (UnsupportedDocument,),
}

ACTORS: dict[str, ActorSpec] = {
    DEFAULT_PIPELINE: ActorSpec(process_document, PIPELINES[DEFAULT_PIPELINE], _DOCUMENT_OPTIONS),
    "document-part": ActorSpec(
        process_document_part, DOCUMENT_PARTS, {**_DOCUMENT_OPTIONS, AGGREGATE_PARTS: aggregate_parts}
    ),
    CSV_QUALITY_PIPELINE: ActorSpec(
        assess_csv_quality,
        PIPELINES[CSV_QUALITY_PIPELINE],
        {**_DOCUMENT_OPTIONS, "throws": (UnsupportedDocument, InvalidThresholds)},
    ),
}


def pipeline_actor(
    function: Callable[..., None], broker: dramatiq.Broker, route: PipelineRoute, **options: Any
) -> dramatiq.Actor:
    """Register ``function`` as the actor of ``route`` with the failure rules above."""

    @functools.wraps(function)
    def run(**kwargs: Any) -> None:
        try:
            function(**kwargs)
        except JobStopped as stop:
            current_job().stopped = stop

    throws = (*options.pop("throws", ()), TimeLimitExceeded)
    return dramatiq.actor(
        run, broker=broker, queue_name=route.queue_name, actor_name=route.actor_name, throws=throws, **options
    )


def register_actors(broker: dramatiq.Broker) -> None:
    for spec in ACTORS.values():
        pipeline_actor(spec.function, broker, spec.route, **spec.options)
