"""Liveness and readiness."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.publisher import BrokerUnavailable
from gateway.services import services


async def health(request: Request) -> JSONResponse:
    """The process is up and serving; says nothing about its dependencies."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Ready to accept work: the ledger answers and RabbitMQ has the job queues."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(services(request).ledger.ping)
        checks["ledger"] = "ok"
    except Exception as error:  # any failure means not ready; the reason is reported
        checks["ledger"] = f"failing: {error.__class__.__name__}: {error}"
    try:
        await services(request).publisher.check()
        checks["broker"] = "ok"
    except BrokerUnavailable as error:
        checks["broker"] = f"failing: {error}"
    failing = [part for part, state in checks.items() if state != "ok"]
    if failing:
        detail = "; ".join(f"{part} {checks[part]}" for part in failing)
        return JSONResponse({"error": "not_ready", "detail": detail, "checks": checks}, status_code=503)
    return JSONResponse({"status": "ready", "checks": checks})
