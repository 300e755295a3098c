"""Batch reports: a summary and one row per job, as JSON, CSV or a standalone HTML page."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from conveyor.ledger import BatchRecord, JobRecord

COLUMNS = ("position", "filename", "state", "kind", "size_bytes", "words", "lines", "chunks", "attempts", "error")


def report_rows(jobs: list[JobRecord]) -> list[dict[str, Any]]:
    rows = []
    for job in jobs:
        result = job.result or {}
        rows.append(
            {
                "position": job.position,
                "filename": job.filename,
                "state": str(job.state),
                "kind": result.get("kind"),
                "size_bytes": job.size_bytes,
                "words": result.get("word_count"),
                "lines": result.get("line_count"),
                "chunks": len(result["chunks"]) if "chunks" in result else None,
                "attempts": job.attempts,
                "error": job.error,
            }
        )
    return rows


def summary(batch: BatchRecord) -> dict[str, Any]:
    return {
        "batch_id": batch.id,
        "status": str(batch.status),
        "status_reason": batch.status_reason,
        "total": batch.total_jobs,
        "succeeded": batch.succeeded_jobs,
        "failed": batch.failed_jobs,
        "cancelled": batch.cancelled_jobs,
        "pending": batch.pending_jobs,
        "progress_percent": batch.progress_percent,
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
    }


def render_csv(rows: list[dict[str, Any]]) -> str:
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return output.getvalue()


_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.4rem; } dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; }
dt { font-weight: 600; } table { border-collapse: collapse; width: 100%; margin-top: 1.5rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #dde1ea; vertical-align: top; }
th { background: #f3f5f9; } .SUCCEEDED { color: #1b7a3c; } .FAILED { color: #b3261e; } .CANCELLED { color: #6b7280; }
"""


def render_html(batch_summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    facts = "".join(
        f"<dt>{escape(name.replace('_', ' '))}</dt><dd>{escape('' if value is None else str(value))}</dd>"
        for name, value in batch_summary.items()
    )
    header = "".join(f"<th>{escape(column.replace('_', ' '))}</th>" for column in COLUMNS)
    body = "".join(
        f'<tr class="{escape(row["state"])}">'
        + "".join(f"<td>{escape('' if row[column] is None else str(row[column]))}</td>" for column in COLUMNS)
        + "</tr>"
        for row in rows
    )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Batch {escape(batch_summary['batch_id'])}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Batch {escape(batch_summary['batch_id'])}: {escape(batch_summary['status'])}</h1>"
        f"<dl>{facts}</dl><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></body></html>"
    )
