"""Results of the CSV quality pipeline that more than one process reads: the
statuses, one metric's outcome, per-column tallies, and the batch summary
(computed by the worker per table and by the gateway per batch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MetricStatus = Literal["pass", "warn", "fail", "invalid", "missing"]
RowStatus = Literal["pass", "warn", "fail"]

METRIC_STATUSES: tuple[MetricStatus, ...] = ("pass", "warn", "fail", "invalid", "missing")
ROW_STATUSES: tuple[RowStatus, ...] = ("pass", "warn", "fail")


@dataclass(frozen=True)
class MetricResult:
    """One threshold column of one row; ``value`` when numeric, ``raw`` and
    ``reason`` when invalid."""

    column: str
    status: MetricStatus
    value: float | None = None
    raw: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        fields = {"status": self.status, "value": self.value, "raw": self.raw, "reason": self.reason}
        return {name: value for name, value in fields.items() if value is not None}


@dataclass
class ColumnTally:
    """Counts per metric status and the range and mean of the numeric values
    of one column, over one table or merged over a batch."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METRIC_STATUSES, 0))
    numeric_count: int = 0
    minimum: float | None = None
    maximum: float | None = None
    total: float = 0.0

    def add(self, metric: MetricResult) -> None:
        self.counts[metric.status] += 1
        if metric.value is not None:
            self._add_values(1, metric.value, metric.value, metric.value)

    def merge(self, summary: Mapping[str, Any]) -> None:
        """Adds a column summary as ``to_json`` wrote it."""
        for status in METRIC_STATUSES:
            self.counts[status] += int(summary["counts"].get(status, 0))
        if summary["numeric_count"]:
            count = int(summary["numeric_count"])
            self._add_values(count, summary["min"], summary["max"], summary["mean"] * count)

    def _add_values(self, count: int, minimum: float, maximum: float, total: float) -> None:
        self.numeric_count += count
        self.minimum = minimum if self.minimum is None else min(self.minimum, minimum)
        self.maximum = maximum if self.maximum is None else max(self.maximum, maximum)
        self.total += total

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "numeric_count": self.numeric_count,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.total / self.numeric_count if self.numeric_count else None,
        }


def summarise_batch(job_results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One summary of a batch from its jobs' results (``QualityReport.to_result``):
    rows and statuses added up, column ranges and means over all the jobs' values,
    and for each missing column the number of jobs that lacked it."""
    jobs = rows = truncated = 0
    status_counts: dict[str, int] = dict.fromkeys(ROW_STATUSES, 0)
    tallies: dict[str, ColumnTally] = {}
    missing: dict[str, int] = {}
    for result in job_results:
        summary = result["summary"]
        jobs += 1
        rows += int(summary["rows"])
        truncated += bool(result.get("rows_truncated"))
        for status in ROW_STATUSES:
            status_counts[status] += int(summary["status_counts"].get(status, 0))
        for column, column_summary in summary["columns"].items():
            tallies.setdefault(column, ColumnTally()).merge(column_summary)
        for column in result.get("missing_columns", ()):
            missing[column] = missing.get(column, 0) + 1
    return {
        "jobs": jobs,
        "rows": rows,
        "jobs_with_rows_truncated": truncated,
        "status_counts": status_counts,
        "columns": {column: tally.to_json() for column, tally in tallies.items()},
        "missing_columns": missing,
    }
