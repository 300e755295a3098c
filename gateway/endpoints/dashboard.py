"""The operators' web dashboard: its page and assets (public: they hold no
data) and the admin-scope JSON it polls, every figure on one answer."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from conveyor.broker import broker_vhost
from conveyor.ledger.dashboard import DashboardLedger
from conveyor.pipelines import PIPELINES
from gateway.authentication import authenticate
from gateway.endpoints.admin import ADMIN_SCOPE, queue_states
from gateway.endpoints.batches import status_filter
from gateway.endpoints.workers import live_workers
from gateway.errors import ApiError
from gateway.publisher import BrokerUnavailable
from gateway.rabbitmq_figures import unacked_messages
from gateway.services import services
from gateway.views import batch_view, job_view

ASSETS = Path(__file__).resolve().parents[1] / "dashboard"
ASSET_TYPES = {"app.js": "text/javascript", "style.css": "text/css"}
BATCH_ROWS = 50
RATE_WINDOW = timedelta(minutes=1)
JOB_ROWS = 500


async def page(request: Request) -> Response:
    return FileResponse(ASSETS / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


async def asset(request: Request) -> Response:
    name = request.path_params["asset"]
    if name not in ASSET_TYPES:
        raise ApiError(404, "not_found", f"no dashboard asset {name!r}")
    return FileResponse(ASSETS / name, media_type=ASSET_TYPES[name], headers={"Cache-Control": "no-cache"})


def _by_queue(per_pipeline: dict[str, int]) -> Counter[str]:
    """Counts per pipeline summed per queue (pipelines not served here are left out)."""
    totals: Counter[str] = Counter()
    for pipeline, count in per_pipeline.items():
        if pipeline in PIPELINES:
            totals[PIPELINES[pipeline].queue_name] += count
    return totals


async def overview(request: Request) -> JSONResponse:
    """Batches of every client (newest first, ``?status=`` filters), queues, workers, tiers, failures, the last hour."""
    authenticate(request, ADMIN_SCOPE)
    gateway = services(request)
    figures = DashboardLedger(gateway.ledger.engine)
    status = status_filter(request)
    rows = await gateway.read_ledger(figures.batches, status, BATCH_ROWS)
    try:
        queues = await queue_states(gateway.publisher)
    except BrokerUnavailable as error:
        queues = [{"queue": "RabbitMQ", "ready": None, "consumers": None, "error": str(error)}]
    unacked = await unacked_messages(gateway.settings.rabbitmq_metrics_url, broker_vhost(gateway.settings.broker_url))
    arrived, ended = map(_by_queue, await gateway.read_ledger(figures.pipeline_rates, RATE_WINDOW))
    for row in queues:
        row["unacked"] = None if unacked is None else unacked.get(row["queue"], 0)
        row["arrived_per_minute"], row["ended_per_minute"] = arrived[row["queue"]], ended[row["queue"]]
    return JSONResponse(
        {
            "batches": [
                {
                    "id": row.id, "client": row.client_name, "tier": row.tier, "status": row.status,
                    "total": row.total, "succeeded": row.succeeded, "failed": row.failed, "cancelled": row.cancelled,
                    "created_at": row.created_at.isoformat(),
                    "finished_at": row.finished_at.isoformat() if row.finished_at else None,
                }
                for row in rows
            ],
            "queues": queues,
            "workers": await live_workers(gateway),
            "tiers": await gateway.read_ledger(figures.tier_usage),
            "failures": [
                {"job_id": f.job_id, "batch_id": f.batch_id, "filename": f.filename, "error": f.error,
                 "finished_at": f.finished_at.isoformat() if f.finished_at else None}
                for f in await gateway.read_ledger(figures.recent_failures)
            ],
            "last_hour": [
                {"minute": minute.start.isoformat(), "finished": minute.finished, "arrived": minute.arrived}
                for minute in await gateway.read_ledger(figures.last_hour)
            ],
        }
    )


async def batch_detail(request: Request) -> JSONResponse:
    """Any client's batch with its jobs (the first 500), for the batch page."""
    authenticate(request, ADMIN_SCOPE)
    gateway = services(request)
    batch_id = request.path_params["batch_id"]
    batch = await gateway.read_ledger(gateway.ledger.find_batch, batch_id)
    if batch is None:
        raise ApiError(404, "not_found", f"no batch {batch_id}")
    jobs = await gateway.read_ledger(gateway.ledger.list_jobs, batch_id, -1, JOB_ROWS)
    return JSONResponse({"batch": batch_view(batch), "jobs": [job_view(job) for job in jobs]})
