"""The gateway's Prometheus metrics, served by each replica at ``CONVEYOR_METRICS_PATH``.

Request metrics come from :class:`RequestMetrics`, an ASGI middleware that
labels each request with its route template (``/api/v1/batches/{batch_id}``,
never the raw path) so the series stay few.  Endpoints count what only they
know (uploads, published jobs, refusals) through the counters below.  The
ledger's backlog figures are read at scrape time by :class:`BacklogMetrics`,
at most once per ``CONVEYOR_BUSINESS_METRICS_SECONDS``; every replica exports
the same figures, so rules aggregate them with ``max``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.ledger.monitoring import BacklogFigures, MonitoringLedger
from conveyor.pipelines import PIPELINES
from conveyor.tiers import Tiers

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"
# Any other method a client sends is counted under one label, so series stay few.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
UNAUTHENTICATED = "unauthenticated"
AUTH_FAILURE_REASONS = ("missing_token", "invalid_token", "expired_token", "revoked_token", "insufficient_scope", "invalid_client")
BACKPRESSURE_REASONS = ("backlog_full", "broker_unavailable", "quota_exceeded")

REQUESTS = Counter(
    "conveyor_gateway_requests", "HTTP requests answered, by route template, method and status.", ["route", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "conveyor_gateway_request_duration_seconds",
    "Time to answer an HTTP request (uploads included, until the last byte is sent).",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
IN_FLIGHT = Gauge("conveyor_gateway_requests_in_flight", "HTTP requests being answered now.")
UPLOAD_BYTES = Counter("conveyor_gateway_upload_bytes", "Bytes of accepted uploads, by tier.", ["tier"])
UPLOAD_FILES = Counter("conveyor_gateway_upload_files", "Files of accepted uploads, by tier.", ["tier"])
JOBS_PUBLISHED = Counter(
    "conveyor_gateway_jobs_published", "Job messages published (new batches and API retries).", ["queue", "tier"]
)
AUTH_FAILURES = Counter("conveyor_gateway_auth_failures", "Refused authentications, by reason.", ["reason"])
RATE_LIMITED = Counter("conveyor_gateway_rate_limited", "Requests answered 429 by the rate limits, by tier.", ["tier"])
BACKPRESSURE_REJECTIONS = Counter(
    "conveyor_gateway_backpressure_rejections", "Uploads refused to protect the queues, by reason.", ["reason"]
)


def initialise_series(tiers: Tiers) -> None:
    """Create every series whose labels are known, at 0, so rules see them before any event."""
    for reason in AUTH_FAILURE_REASONS:
        AUTH_FAILURES.labels(reason)
    for reason in BACKPRESSURE_REASONS:
        BACKPRESSURE_REJECTIONS.labels(reason)
    RATE_LIMITED.labels(UNAUTHENTICATED)
    for tier in tiers.names:
        RATE_LIMITED.labels(tier)
        UPLOAD_BYTES.labels(tier)
        UPLOAD_FILES.labels(tier)
        for route in PIPELINES.values():
            JOBS_PUBLISHED.labels(route.queue_name, tier)


class RequestMetrics:
    """Counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: the request died with an exception

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            IN_FLIGHT.dec()
            route = scope.get("route")  # set by the router when a path matched
            method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
            count, duration = _request_series(getattr(route, "path", UNMATCHED_ROUTE), method, status)
            duration.observe(time.perf_counter() - started)
            count.inc()


@functools.cache
def _request_series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    """The series of one route, method and status, looked up once (a label
    lookup takes a lock; routes, known methods and statuses are few)."""
    return REQUESTS.labels(route, method, str(status)), REQUEST_SECONDS.labels(route, method)


class BacklogMetrics(Collector):
    """The ledger's backlog figures as gauges, read at most once per ``refresh_seconds``.

    A failed read keeps the last figures and leaves the success timestamp
    where it was, which is what the staleness alert watches.
    """

    def __init__(self, ledger: MonitoringLedger, tiers: Tiers, refresh_seconds: float) -> None:
        self._ledger = ledger
        self._tiers = tiers
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._figures: BacklogFigures | None = None
        self._read_at = float("-inf")

    def _current(self) -> BacklogFigures | None:
        with self._lock:
            if time.monotonic() - self._read_at >= self._refresh_seconds:
                self._read_at = time.monotonic()
                try:
                    self._figures = self._ledger.backlog_figures()
                except Exception:
                    logger.exception("reading the ledger's backlog figures for /metrics failed")
            return self._figures

    def collect(self) -> Iterator[Metric]:
        figures = self._current()
        if figures is None:
            return
        open_batches = GaugeMetricFamily("conveyor_open_batches", "Batches not finished, by status.", labels=["status"])
        for status in ("PENDING", "PROCESSING"):
            open_batches.add_metric([status], figures.open_batches.get(status, 0))
        yield open_batches
        oldest = GaugeMetricFamily(
            "conveyor_oldest_pending_job_age_seconds", "Age of the oldest job waiting in each queue.", labels=["queue"]
        )
        for queue, age in _oldest_age_by_queue(figures).items():
            oldest.add_metric([queue], age)
        yield oldest
        backlog = GaugeMetricFamily("conveyor_backlog_jobs", "Jobs waiting (PENDING), by client tier.", labels=["tier"])
        for tier in self._tiers.names:
            backlog.add_metric([tier], figures.pending_jobs.get(tier, 0))
        yield backlog
        yield GaugeMetricFamily(
            "conveyor_webhooks_failed", "Batches whose webhook failed every attempt.", value=figures.failed_webhooks
        )
        yield GaugeMetricFamily(
            "conveyor_business_metrics_last_success_timestamp_seconds",
            "When the ledger figures above were last read.",
            value=figures.measured_at.timestamp(),
        )


def _oldest_age_by_queue(figures: BacklogFigures) -> dict[str, float]:
    ages = {route.queue_name: 0.0 for route in PIPELINES.values()}
    for pipeline, created_at in figures.oldest_pending.items():
        route = PIPELINES.get(pipeline)
        if route is not None:
            age = (figures.measured_at - created_at).total_seconds()
            ages[route.queue_name] = max(ages[route.queue_name], age)
    return ages


def metrics_endpoint(collectors: Iterable[Collector]):
    """The ``/metrics`` endpoint: this process's metrics plus ``collectors`` (this app's own)."""
    app_registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        app_registry.register(collector)

    def exposition() -> bytes:
        return generate_latest(REGISTRY) + generate_latest(app_registry)

    async def endpoint(request: Request) -> Response:
        return Response(await run_in_threadpool(exposition), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return endpoint
