"""The autoscaler's inputs, read from Prometheus's HTTP API (instant queries
over the recording rules of ``prometheus/rules/conveyor-recording.yml``).

Queue depth is filtered to one RabbitMQ vhost, the deployment's own; several
deployments may share a broker.  A missing queue-depth series is an error,
not a zero: it means RabbitMQ is not scraped, and acting on it could scale a
busy platform down.
"""

from __future__ import annotations

import math

import httpx

from conveyor.scaling_policy import Load


class LoadUnavailable(RuntimeError):
    """Prometheus did not answer, or lacks a series the decision needs."""


def load_queries(vhost: str) -> dict[str, str]:
    """Field of :class:`Load` → PromQL returning one number."""
    selector = f'{{vhost="{vhost}"}}'
    return {
        "ready_jobs": f"sum(queue:conveyor_ready_messages:sum{selector})",
        "in_progress_jobs": "sum(conveyor:jobs_in_progress:sum) or vector(0)",
        "arrival_rate": "sum(queue:conveyor_jobs_published:rate1m) or vector(0)",
        "completion_rate_per_worker": "sum(conveyor:jobs_finished_per_worker:rate1m) or vector(0)",
        "workers_up": "sum(conveyor:workers_up:sum) or vector(0)",
    }


class PrometheusLoadReader:
    def __init__(self, prometheus_url: str, vhost: str, timeout: float = 5.0) -> None:
        self.prometheus_url = prometheus_url.rstrip("/")
        self.queries = load_queries(vhost)
        self.timeout = timeout

    def _scalar(self, client: httpx.Client, query: str) -> float:
        try:
            response = client.get(f"{self.prometheus_url}/api/v1/query", params={"query": query})
            response.raise_for_status()
            result = response.json()["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError) as error:
            raise LoadUnavailable(f"Prometheus at {self.prometheus_url}: {error!r}") from error
        if not result:
            raise LoadUnavailable(f"Prometheus has no series for {query}")
        value = float(result[0]["value"][1])
        return 0.0 if math.isnan(value) else value

    def read(self) -> Load:
        with httpx.Client(timeout=self.timeout) as client:
            return Load(**{field: self._scalar(client, query) for field, query in self.queries.items()})
