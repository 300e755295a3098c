"""Per-queue figures only RabbitMQ's Prometheus plugin has (messages delivered
but not yet acknowledged), read for the operators' dashboard.  The plugin
refreshes them every few seconds; when it does not answer, the figures are
simply absent.

Read with the standard library in a worker thread: an HTTP client library
imported here would add megabytes to every replica's start-up for a figure
only an operator's dashboard asks for."""

from __future__ import annotations

import logging
import urllib.request
from urllib.parse import urlencode

from prometheus_client.parser import text_string_to_metric_families
from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 2.0


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        return response.read().decode()


async def unacked_messages(metrics_url: str, vhost: str) -> dict[str, int] | None:
    """Queue → messages delivered and not yet acknowledged, in ``vhost``; ``None`` if unknown."""
    url = f"{metrics_url}/metrics/detailed?{urlencode({'family': 'queue_coarse_metrics', 'vhost': vhost})}"
    try:
        text = await run_in_threadpool(_fetch, url)
    except (OSError, ValueError) as error:  # refused, timed out, an HTTP error status, a bad URL
        logger.warning("RabbitMQ's metrics at %s did not answer: %r", metrics_url, error)
        return None
    return {
        sample.labels["queue"]: int(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rabbitmq_detailed_queue_messages_unacked" and sample.labels.get("vhost") == vhost
    }
