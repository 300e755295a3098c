"""Quality assessment of one uploaded table against its batch's thresholds.

Pure functions over bytes, like ``document_analysis`` whose decoding and table
parsing they reuse: the worker's actor reads the blob and stores the result.

Status rules:

* A metric (one threshold column of one row) is ``pass``, ``warn`` or ``fail``
  by ``Threshold.classify``: reaching a threshold counts as crossing it
  (``higher_better``: value <= fail fails, value <= warning warns;
  ``lower_better``: value >= fail fails, value >= warning warns).
* A cell that is empty, not a plain decimal number (``1``, ``-0.5``, ``1e3``;
  no ``nan``, ``inf``, thousands separators or decimal commas) or too large to
  be finite is ``invalid``, kept with its raw text and the reason.
* A threshold column absent from the header is listed once in
  ``missing_columns`` and is ``missing`` in every row.
* A row's overall status is the worst of its metrics in the order
  pass < warn < fail, where ``invalid`` and ``missing`` count as ``fail``: a
  value that cannot be checked is not accepted.

Every row is counted in the summary; only the first ``max_row_details`` rows
keep their details (``rows_truncated`` says when some were left out), so a
result stays a bounded size whatever the upload's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from actors.document_analysis import UnsupportedDocument, decode_text, parse_table
from actors.job_context import current_job
from conveyor.quality_summary import (
    ROW_STATUSES,
    ColumnTally,
    MetricResult,
    MetricStatus,
    RowStatus,
)
from conveyor.quality_thresholds import QualityThresholds, Threshold, parse_thresholds

MAX_ROW_DETAILS = 10_000
CHECKPOINT_EVERY_ROWS = 1_000
MAX_RAW_CHARACTERS = 100
_ROW_STATUS_OF: dict[MetricStatus, RowStatus] = {
    "pass": "pass",
    "warn": "warn",
    "fail": "fail",
    "invalid": "fail",
    "missing": "fail",
}
_SEVERITY: dict[RowStatus, int] = {status: rank for rank, status in enumerate(ROW_STATUSES)}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _no_checkpoint() -> None:
    pass


@dataclass(frozen=True)
class RowResult:
    """``row`` is the 1-based position among the table's data rows (blank lines skipped)."""

    row: int
    status: RowStatus
    metrics: tuple[MetricResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "status": self.status,
            "metrics": {metric.column: metric.to_json() for metric in self.metrics},
        }


@dataclass(frozen=True)
class QualityReport:
    kind: Literal["csv", "tsv"]
    delimiter: str
    encoding: str
    header: tuple[str, ...]
    thresholds: QualityThresholds
    missing_columns: tuple[str, ...]
    row_count: int
    status_counts: dict[RowStatus, int]
    columns: dict[str, ColumnTally]
    rows: tuple[RowResult, ...]
    rows_truncated: bool

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.row_count,
            "status_counts": dict(self.status_counts),
            "columns": {column: tally.to_json() for column, tally in self.columns.items()},
        }

    def to_result(self) -> dict[str, Any]:
        """The job result, JSON-serialisable."""
        return {
            "kind": self.kind,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "header": list(self.header),
            "thresholds": self.thresholds.to_json(),
            "missing_columns": list(self.missing_columns),
            "summary": self.summary(),
            "rows": [row.to_json() for row in self.rows],
            "rows_truncated": self.rows_truncated,
        }


def measure(threshold: Threshold, cell: str) -> MetricResult:
    """The status of one cell under its column's threshold."""
    text = cell.strip()
    reason = None
    if not text:
        reason = "empty"
    elif not _NUMBER.fullmatch(text):
        reason = "not a number (the decimal separator must be '.')" if "," in text else "not a number"
    elif not math.isfinite(value := float(text)):
        reason = "not a finite number"
    if reason is not None:
        raw = cell if len(cell) <= MAX_RAW_CHARACTERS else cell[:MAX_RAW_CHARACTERS] + "…"
        return MetricResult(threshold.column, "invalid", raw=raw, reason=reason)
    return MetricResult(threshold.column, threshold.classify(value), value=value)


def row_status(metrics: Iterable[MetricResult]) -> RowStatus:
    """The worst of the metrics' statuses, invalid and missing counting as fail."""
    return max((_ROW_STATUS_OF[metric.status] for metric in metrics), key=_SEVERITY.__getitem__, default="pass")


def assess_table(
    content: bytes,
    filename: str,
    thresholds: QualityThresholds,
    *,
    max_row_details: int = MAX_ROW_DETAILS,
    checkpoint: Callable[[], None] = _no_checkpoint,
) -> QualityReport:
    """Every data row of the table in ``content`` checked against ``thresholds``.

    ``checkpoint`` is called after every ``CHECKPOINT_EVERY_ROWS`` rows so the
    caller can stop a cancelled or overdue job by raising from it.
    UnsupportedDocument when ``content`` is not a text table of at least two
    columns and two rows (header included) of the same width.
    """
    if max_row_details < 0:
        raise ValueError(f"max_row_details must be at least 0, not {max_row_details}")
    if not content.strip():
        raise UnsupportedDocument("empty document")
    text, encoding = decode_text(content)
    table = parse_table(text)
    if table is None:
        raise UnsupportedDocument(
            f"{filename} is not a table: quality assessment needs a header and at least one row, "
            "in at least two columns, every row with the same number of columns"
        )
    delimiter, (header_cells, *data_rows) = table
    header = tuple(cell.strip() for cell in header_cells)
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        positions.setdefault(name, position)
    missing = tuple(threshold.column for threshold in thresholds if threshold.column not in positions)
    tallies = {threshold.column: ColumnTally() for threshold in thresholds}
    status_counts: dict[RowStatus, int] = dict.fromkeys(ROW_STATUSES, 0)
    details: list[RowResult] = []
    for number, cells in enumerate(data_rows, start=1):
        metrics = tuple(
            measure(threshold, cells[positions[threshold.column]])
            if threshold.column in positions
            else MetricResult(threshold.column, "missing")
            for threshold in thresholds
        )
        for metric in metrics:
            tallies[metric.column].add(metric)
        status = row_status(metrics)
        status_counts[status] += 1
        if len(details) < max_row_details:
            details.append(RowResult(row=number, status=status, metrics=metrics))
        if number % CHECKPOINT_EVERY_ROWS == 0:
            checkpoint()
    return QualityReport(
        kind="tsv" if delimiter == "\t" else "csv",
        delimiter=delimiter,
        encoding=encoding,
        header=header,
        thresholds=thresholds,
        missing_columns=missing,
        row_count=len(data_rows),
        status_counts=status_counts,
        columns=tallies,
        rows=tuple(details),
        rows_truncated=len(details) < len(data_rows),
    )


def assess_csv_quality(job_id: str) -> None:
    """The ``csv_quality`` pipeline: assess the job's table against its batch's thresholds."""
    job = current_job()
    batch = job.ledger.find_batch(job.record.batch_id)
    thresholds = parse_thresholds((batch.pipeline_options or {}).get("thresholds") if batch else None)
    content = job.blobs.read(job.record.blob_sha256)
    job.result = assess_table(content, job.record.filename, thresholds, checkpoint=job.checkpoint).to_result()
