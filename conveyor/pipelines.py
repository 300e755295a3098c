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

    def job_message(self, job_id: str, priority: int, part: int | None = None) -> dramatiq.Message:
        """The message that asks a worker to run job ``job_id`` (or one ``part``
        of it, when the job fanned out) at RabbitMQ ``priority``."""
        kwargs: dict[str, object] = {"job_id": job_id}
        if part is not None:
            kwargs["part"] = part
        return dramatiq.Message(
            queue_name=self.queue_name,
            actor_name=self.actor_name,
            args=(),
            kwargs=kwargs,
            options={"broker_priority": priority},
        )


DEFAULT_PIPELINE = "document"
CSV_QUALITY_PIPELINE = "csv_quality"
PIPELINES: dict[str, PipelineRoute] = {
    DEFAULT_PIPELINE: PipelineRoute(queue_name="documents", actor_name="process_document"),
    CSV_QUALITY_PIPELINE: PipelineRoute(queue_name="analysis", actor_name="assess_csv_quality"),
}


# Messages workers send to workers: the parts of a large document, webhooks.
DOCUMENT_PARTS = PipelineRoute(queue_name="analysis", actor_name="process_document_part")
WEBHOOKS = PipelineRoute(queue_name="maintenance", actor_name="deliver_webhook")
MAINTENANCE_QUEUE = "maintenance"  # webhooks and the scheduler's periodic jobs


def webhook_message(batch_id: str) -> dramatiq.Message:
    """The message that asks a worker to send the ended batch's webhook."""
    return dramatiq.Message(
        queue_name=WEBHOOKS.queue_name, actor_name=WEBHOOKS.actor_name, args=(), kwargs={"batch_id": batch_id}, options={}
    )


def queue_names() -> list[str]:
    """Every queue workers consume (what backpressure, metrics and scaling watch)."""
    return sorted({route.queue_name for route in [*PIPELINES.values(), DOCUMENT_PARTS]} | {MAINTENANCE_QUEUE})
