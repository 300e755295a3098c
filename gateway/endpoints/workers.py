"""Live workers, from the heartbeats each worker process writes (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.ledger.maintenance import LIVE_WITHIN_SECONDS, MaintenanceLedger, WorkerRecord
from gateway.authentication import authenticate
from gateway.endpoints.admin import ADMIN_SCOPE
from gateway.services import GatewayServices, services


def worker_view(worker: WorkerRecord) -> dict[str, Any]:
    return {
        "worker_id": worker.worker_id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "started_at": worker.started_at.isoformat(),
        "last_seen_at": worker.last_seen_at.isoformat(),
        "jobs_in_progress": worker.jobs_in_progress,
    }


async def live_workers(gateway: GatewayServices) -> dict[str, Any]:
    """Worker processes that wrote a heartbeat within the last ``LIVE_WITHIN_SECONDS``."""
    since = datetime.now(UTC) - timedelta(seconds=LIVE_WITHIN_SECONDS)
    workers = await gateway.read_ledger(MaintenanceLedger(gateway.ledger.engine).live_workers, since)
    return {
        "workers": [worker_view(worker) for worker in workers],
        "jobs_in_progress": sum(worker.jobs_in_progress for worker in workers),
        "live_within_seconds": LIVE_WITHIN_SECONDS,
    }


async def list_workers(request: Request) -> JSONResponse:
    authenticate(request, ADMIN_SCOPE)
    return JSONResponse(await live_workers(services(request)))
