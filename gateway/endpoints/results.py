"""A batch's results (paged), its report, and single jobs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from conveyor.ledger import JobState
from conveyor.pipelines import CSV_QUALITY_PIPELINE
from conveyor.quality_summary import summarise_batch
from gateway.authentication import authenticate
from gateway.endpoints.batches import READ_SCOPE, owned_batch
from gateway.errors import ApiError
from gateway.paging import decode_cursor, encode_cursor, page_size
from gateway.reports import render_csv, render_html, report_rows, summary
from gateway.services import services
from gateway.views import batch_view, job_view

REPORT_FORMATS = ("json", "csv", "html")


async def get_results(request: Request) -> JSONResponse:
    """The batch and its jobs in upload order, ``limit`` at a time."""
    batch = await owned_batch(request, READ_SCOPE)
    limit, cursor = page_size(request), decode_cursor(request)
    if cursor is not None and not (len(cursor) == 1 and isinstance(cursor[0], int)):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned; start again without it")
    after = cursor[0] if cursor else -1
    gateway = services(request)
    found = await gateway.read_ledger(gateway.ledger.list_jobs, batch.id, after, limit + 1)
    page = found[:limit]
    next_cursor = encode_cursor([page[-1].position]) if len(found) > limit else None
    return JSONResponse({"batch": batch_view(batch), "jobs": [job_view(job) for job in page], "next_cursor": next_cursor})


async def get_report(request: Request) -> Response:
    """Summary and one row per job: ``?format=json`` (default), ``csv`` or ``html``."""
    report_format = request.query_params.get("format", "json")
    if report_format not in REPORT_FORMATS:
        raise ApiError(400, "invalid_parameter", f"format must be one of {', '.join(REPORT_FORMATS)}")
    batch = await owned_batch(request, READ_SCOPE)
    gateway = services(request)
    jobs = await gateway.read_ledger(gateway.ledger.list_jobs, batch.id)
    rows = report_rows(jobs)
    batch_summary = summary(batch)
    if report_format == "csv":
        return PlainTextResponse(
            render_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="batch-{batch.id}.csv"'},
        )
    if report_format == "html":
        return HTMLResponse(render_html(batch_summary, rows))
    report: dict[str, Any] = {"summary": batch_summary, "jobs": rows}
    if any(job.pipeline == CSV_QUALITY_PIPELINE for job in jobs):
        report["quality"] = summarise_batch(
            job.result for job in jobs if job.state == JobState.SUCCEEDED and job.result and "summary" in job.result
        )
    return JSONResponse(report)


async def get_job(request: Request) -> JSONResponse:
    principal = authenticate(request, READ_SCOPE)
    job_id = request.path_params["job_id"]
    gateway = services(request)
    job = await gateway.read_ledger(gateway.ledger.get_job, job_id, principal.client_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    return JSONResponse(job_view(job))
