"""Every pipeline's actor, registered under the names in :mod:`conveyor.pipelines`.

Adding a pipeline: write its function in a module of its own, add its route
to ``conveyor.pipelines.PIPELINES`` and its entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq

from actors.document_analysis import UnsupportedDocument
from actors.documents import process_document
from conveyor.pipelines import PIPELINES


@dataclass(frozen=True)
class ActorSpec:
    function: Callable[..., None]
    options: dict[str, Any] = field(default_factory=dict)


ACTORS: dict[str, ActorSpec] = {
    "document": ActorSpec(
        process_document,
        {
            "max_retries": 3,
            "min_backoff": 1_000,
            "max_backoff": 60_000,
            "time_limit": 10 * 60_000,
            "throws": (UnsupportedDocument,),
        },
    ),
}


def register_actors(broker: dramatiq.Broker) -> None:
    for pipeline, spec in ACTORS.items():
        route = PIPELINES[pipeline]
        dramatiq.actor(
            spec.function,
            broker=broker,
            queue_name=route.queue_name,
            actor_name=route.actor_name,
            **spec.options,
        )
