"""Schedules: re-run a batch (or, for operators, a directory) at cron times.

``POST /api/v1/schedules`` with ``{"name", "cron", "source_kind", "source"}``:
``source_kind`` ``batch`` (the default) re-runs the caller's batch ``source``
with the same files and options; ``directory`` submits the files of the
directory ``source`` on the scheduler's host and needs the ``admin`` scope.
``cron`` is five cron fields, evaluated in UTC, or ``@hourly``, ``@daily``,
``@weekly``, ``@monthly``.  The scheduler (see :mod:`actors.periodic`) runs
them; each run is one batch, whatever the number of schedulers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conveyor.ledger.scheduling import (
    CRON_ALIASES,
    SOURCE_KINDS,
    InvalidSchedule,
    ScheduleLedger,
    ScheduleRecord,
    next_run_after,
)
from gateway.authentication import authenticate
from gateway.endpoints.admin import ADMIN_SCOPE
from gateway.endpoints.batches import READ_SCOPE, WRITE_SCOPE
from gateway.errors import ApiError
from gateway.json_body import read_json_object
from gateway.services import services
from gateway.views import batch_path

MAX_SCHEDULES_PER_CLIENT = 100
_FIELDS = {"name", "cron", "source_kind", "source"}


def schedule_path(schedule_id: str) -> str:
    return f"/api/v1/schedules/{schedule_id}"


def schedule_view(schedule: ScheduleRecord) -> dict[str, Any]:
    links = {"self": schedule_path(schedule.id)}
    if schedule.source_kind == "batch":
        links["template"] = batch_path(schedule.source)
    if schedule.last_batch_id:
        links["last_batch"] = batch_path(schedule.last_batch_id)
    return {
        "id": schedule.id,
        "name": schedule.name,
        "cron": schedule.cron,
        "source_kind": schedule.source_kind,
        "source": schedule.source,
        "enabled": schedule.enabled,
        "created_at": schedule.created_at.isoformat(),
        "next_run_at": schedule.next_run_at.isoformat(),
        "last_run_at": schedule.last_run_at.isoformat() if schedule.last_run_at else None,
        "last_batch_id": schedule.last_batch_id,
        "links": links,
    }


def _schedules(request: Request) -> ScheduleLedger:
    return ScheduleLedger(services(request).ledger.engine)


def _text(document: dict[str, Any], field: str, default: str | None = None) -> str:
    value = document.get(field, default)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "invalid_body", f"{field} must be a non-empty string")
    return value


async def create_schedule(request: Request) -> JSONResponse:
    principal = authenticate(request, WRITE_SCOPE)
    document = await read_json_object(request)
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise ApiError(422, "invalid_body", f"unknown fields: {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    name, cron, source = _text(document, "name"), _text(document, "cron"), _text(document, "source")
    source_kind = _text(document, "source_kind", "batch")
    if source_kind not in SOURCE_KINDS:
        raise ApiError(422, "invalid_body", f"source_kind must be one of {', '.join(SOURCE_KINDS)}")
    try:
        next_run_after(cron, datetime.now(UTC))
    except InvalidSchedule as error:
        raise ApiError(422, "invalid_cron", f"{error}; aliases: {', '.join(CRON_ALIASES)}") from None
    gateway = services(request)
    if source_kind == "directory":
        if ADMIN_SCOPE not in principal.scopes:
            raise ApiError(403, "insufficient_scope", "directory schedules need the 'admin' scope")
        if not source.startswith("/"):
            raise ApiError(422, "invalid_body", "a directory source must be an absolute path")
    elif await gateway.read_ledger(gateway.ledger.get_batch, source, principal.client_id) is None:
        raise ApiError(404, "not_found", f"no batch {source}")
    schedules = _schedules(request)
    existing = await gateway.read_ledger(schedules.list_schedules, principal.client_id)
    if len(existing) >= MAX_SCHEDULES_PER_CLIENT:
        raise ApiError(409, "too_many_schedules", f"a client may have {MAX_SCHEDULES_PER_CLIENT} schedules; delete one first")
    try:
        schedule = await run_in_threadpool(
            schedules.create_schedule, principal.client_id, name, cron, source_kind, source
        )
    except InvalidSchedule as error:
        raise ApiError(422, "invalid_body", str(error)) from None
    return JSONResponse(schedule_view(schedule), status_code=201, headers={"Location": schedule_path(schedule.id)})


async def list_schedules(request: Request) -> JSONResponse:
    principal = authenticate(request, READ_SCOPE)
    gateway = services(request)
    found = await gateway.read_ledger(_schedules(request).list_schedules, principal.client_id)
    return JSONResponse({"schedules": [schedule_view(schedule) for schedule in found]})


async def delete_schedule(request: Request) -> Response:
    principal = authenticate(request, WRITE_SCOPE)
    schedule_id = request.path_params["schedule_id"]
    deleted = await run_in_threadpool(_schedules(request).delete_schedule, schedule_id, principal.client_id)
    if not deleted:
        raise ApiError(404, "not_found", f"no schedule {schedule_id}")
    return Response(status_code=204)
