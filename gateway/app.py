"""The gateway application: ``uvicorn --factory gateway.app:create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

from slowapi.errors import RateLimitExceeded
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.blobs import BlobStore
from conveyor.broker import create_broker
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import require_current
from conveyor.ledger.monitoring import MonitoringLedger
from conveyor.settings import Settings, SettingsError
from conveyor.tiers import Tiers
from gateway.abandoned_batches import SWEEP_INTERVAL_SECONDS, cancel_abandoned_batches
from conveyor.access_tokens import TRUST_REFRESH_SECONDS, TokenCodec
from gateway.background import every
from gateway.endpoints import admin, batches, dashboard, health, results, schedules, tokens, watching, webhooks, workers
from gateway.errors import EXCEPTION_HANDLERS
from gateway.metrics import BacklogMetrics, RequestMetrics, initialise_series, metrics_endpoint
from gateway.openapi import openapi
from gateway.publisher import JobPublisher
from gateway.rate_limits import RateLimits, RouteClass, handle_rate_limit_exceeded, whole_second_reset
from gateway.services import GatewayServices

# (path, method, endpoint, route class): every route is rate limited by its class.
ROUTE_TABLE = [
    ("/api/v1/health", "GET", health.health, RouteClass.PROBES),
    ("/api/v1/ready", "GET", health.ready, RouteClass.PROBES),
    ("/api/v1/openapi.json", "GET", openapi, RouteClass.PROBES),
    ("/api/v1/auth/token", "POST", tokens.issue_token, RouteClass.AUTH),
    ("/api/v1/limits", "GET", batches.get_limits, RouteClass.READS),
    ("/api/v1/batches", "POST", batches.create_batch, RouteClass.UPLOADS),
    ("/api/v1/batches", "GET", batches.list_batches, RouteClass.READS),
    ("/api/v1/batches/{batch_id}", "GET", batches.get_batch, RouteClass.READS),
    ("/api/v1/batches/{batch_id}", "DELETE", batches.cancel_batch, RouteClass.UPLOADS),
    ("/api/v1/batches/{batch_id}/retry", "POST", batches.retry_batch, RouteClass.UPLOADS),
    ("/api/v1/batches/{batch_id}/results", "GET", results.get_results, RouteClass.READS),
    ("/api/v1/batches/{batch_id}/report", "GET", results.get_report, RouteClass.READS),
    ("/api/v1/jobs/{job_id}", "GET", results.get_job, RouteClass.READS),
    ("/api/v1/webhook-secret", "GET", webhooks.get_webhook_secret, RouteClass.READS),
    ("/api/v1/admin/clients", "GET", admin.list_clients, RouteClass.READS),
    ("/api/v1/admin/tokens/revoke", "POST", admin.revoke_tokens, RouteClass.UPLOADS),
    ("/api/v1/admin/signing-keys/rotate", "POST", admin.rotate_signing_key, RouteClass.UPLOADS),
    ("/api/v1/admin/queues", "GET", admin.queue_depths, RouteClass.READS),
    ("/api/v1/admin/workers", "GET", workers.list_workers, RouteClass.READS),
    ("/api/v1/admin/dashboard", "GET", dashboard.overview, RouteClass.READS),
    ("/api/v1/admin/batches/{batch_id}", "GET", dashboard.batch_detail, RouteClass.READS),
    ("/dashboard", "GET", dashboard.page, RouteClass.PROBES),
    ("/dashboard/{asset}", "GET", dashboard.asset, RouteClass.PROBES),
    ("/api/v1/admin/watched-directories", "GET", watching.list_watched_directories, RouteClass.READS),
    ("/api/v1/admin/watched-directories", "POST", watching.create_watched_directory, RouteClass.UPLOADS),
    (
        "/api/v1/admin/watched-directories/{directory_id}",
        "DELETE",
        watching.delete_watched_directory,
        RouteClass.UPLOADS,
    ),
    ("/api/v1/schedules", "POST", schedules.create_schedule, RouteClass.UPLOADS),
    ("/api/v1/schedules", "GET", schedules.list_schedules, RouteClass.READS),
    ("/api/v1/schedules/{schedule_id}", "DELETE", schedules.delete_schedule, RouteClass.UPLOADS),
]


def _by_method(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint for a path, so that a 405 lists every method the path supports."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return whole_second_reset(await handlers[method](request))

    return endpoint


def build_routes(limits: RateLimits) -> list[Route]:
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for path, method, endpoint, route_class in ROUTE_TABLE:
        by_path.setdefault(path, {})[method] = limits.limit(route_class, endpoint)
    return [Route(path, _by_method(handlers), methods=list(handlers)) for path, handlers in by_path.items()]


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; settings come from the environment unless given.

    Settings, tiers and the schema revision are checked here, before the
    server binds, so a misconfigured replica never starts serving.
    """
    settings = settings or Settings.from_env()
    if any(path == settings.metrics_path for path, *_ in ROUTE_TABLE):
        raise SettingsError(f"CONVEYOR_METRICS_PATH: {settings.metrics_path} is an API route; choose another path")
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tiers = Tiers.load(settings.tiers_file, settings.max_priority)
    engine = create_ledger_engine(settings.database_url)
    require_current(engine)
    ledger = Ledger(engine)
    tokens = TokenCodec(settings, ledger)
    limits = RateLimits(settings, tiers, tokens)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        publisher = JobPublisher(create_broker(settings, confirm_delivery=True))
        await run_in_threadpool(tokens.refresh)
        app.state.services = GatewayServices(
            settings=settings,
            tiers=tiers,
            ledger=ledger,
            blobs=BlobStore(settings.blob_dir),
            tokens=tokens,
            publisher=publisher,
        )
        upkeep = [
            asyncio.create_task(every(TRUST_REFRESH_SECONDS, tokens.refresh)),
            asyncio.create_task(every(SWEEP_INTERVAL_SECONDS, partial(cancel_abandoned_batches, ledger))),
        ]
        try:
            yield
        finally:
            for task in upkeep:
                task.cancel()
            await publisher.close()
            engine.dispose()

    # Prometheus scrapes each replica directly; the path is kept off the public proxy.
    backlog = BacklogMetrics(MonitoringLedger(engine), tiers, settings.business_metrics_seconds)
    metrics = Route(settings.metrics_path, metrics_endpoint([backlog]), methods=["GET"])
    initialise_series(tiers)
    app = Starlette(
        routes=[*build_routes(limits), metrics],
        middleware=[Middleware(RequestMetrics)],
        exception_handlers={**EXCEPTION_HANDLERS, RateLimitExceeded: handle_rate_limit_exceeded},
        lifespan=lifespan,
    )
    app.state.limiter = limits.limiter
    return app
