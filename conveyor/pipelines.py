"""Which queue and actor run each pipeline: the contract between gateway and workers.

The gateway publishes by these names and never imports actor code; the worker
registers actors under the same names (a test holds the two together).
"""

from __future__ import annotations

from dataclasses import dataclass

import dramatiq


@dataclass(frozen=True)
class PipelineRoute:
    queue_name: str
    actor_name: str

    def job_message(self, job_id: str, priority: int) -> dramatiq.Message:
        """The message that asks a worker to run job ``job_id`` at RabbitMQ ``priority``."""
        return dramatiq.Message(
            queue_name=self.queue_name,
            actor_name=self.actor_name,
            args=(),
            kwargs={"job_id": job_id},
            options={"broker_priority": priority},
        )


DEFAULT_PIPELINE = "document"
PIPELINES: dict[str, PipelineRoute] = {
    DEFAULT_PIPELINE: PipelineRoute(queue_name="documents", actor_name="process_document"),
}


def queue_names() -> list[str]:
    return sorted({route.queue_name for route in PIPELINES.values()})
