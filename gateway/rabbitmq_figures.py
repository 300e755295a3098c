"""Per-queue figures only RabbitMQ's Prometheus plugin has (messages delivered
but not yet acknowledged), read for the operators' dashboard.  The plugin
refreshes them every few seconds; when it does not answer, the figures are
simply absent."""

from __future__ import annotations

import logging
import httpx
from prometheus_client.parser import text_string_to_metric_families

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2.0


async def unacked_messages(metrics_url: str, vhost: str) -> dict[str, int] | None:
    """Queue → messages delivered and not yet acknowledged, in ``vhost``; ``None`` if unknown."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            response = await client.get(
                f"{metrics_url}/metrics/detailed", params={"family": "queue_coarse_metrics", "vhost": vhost}
            )
            response.raise_for_status()
    except httpx.HTTPError as error:
        logger.warning("RabbitMQ's metrics at %s did not answer: %r", metrics_url, error)
        return None
    return {
        sample.labels["queue"]: int(sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "rabbitmq_detailed_queue_messages_unacked" and sample.labels.get("vhost") == vhost
    }
