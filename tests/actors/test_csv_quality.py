from __future__ import annotations

import json

import pytest

from actors.csv_quality import CHECKPOINT_EVERY_ROWS, assess_table
from conveyor.quality_summary import summarise_batch
from actors.document_analysis import UnsupportedDocument
from conveyor.quality_thresholds import parse_thresholds

THRESHOLDS = parse_thresholds(
    {
        "columns": {
            "accuracy": {"warning": 0.9, "fail": 0.8, "direction": "higher_better"},
            "latency_ms": {"warning": 200, "fail": 500, "direction": "lower_better"},
        }
    }
)


def csv_bytes(*lines: str, delimiter: str = ",") -> bytes:
    return "\n".join(delimiter.join(line.split(",")) for line in lines).encode()


def test_each_row_gets_a_status_per_metric_and_overall() -> None:
    content = csv_bytes(
        "model,accuracy,latency_ms",
        "a,0.95,120",
        "b,0.9,150",  # accuracy at the warning threshold
        "c,0.95,500",  # latency at the fail threshold
        "d,0.8,199.5",  # accuracy at the fail threshold
        "e,0.85,200",  # both warn
    )
    result = assess_table(content, "models.csv", THRESHOLDS).to_result()
    rows = result["rows"]
    assert [row["status"] for row in rows] == ["pass", "warn", "fail", "fail", "warn"]
    assert [row["row"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["metrics"] == {
        "accuracy": {"status": "pass", "value": 0.95},
        "latency_ms": {"status": "pass", "value": 120.0},
    }
    assert rows[2]["metrics"]["latency_ms"] == {"status": "fail", "value": 500.0}
    assert rows[3]["metrics"]["accuracy"] == {"status": "fail", "value": 0.8}
    assert rows[4]["metrics"] == {
        "accuracy": {"status": "warn", "value": 0.85},
        "latency_ms": {"status": "warn", "value": 200.0},
    }
    assert (result["kind"], result["delimiter"], result["encoding"]) == ("csv", ",", "utf-8")
    assert result["header"] == ["model", "accuracy", "latency_ms"]
    assert result["thresholds"] == THRESHOLDS.to_json()
    assert (result["missing_columns"], result["rows_truncated"]) == ([], False)


def test_summary_counts_statuses_and_describes_each_column() -> None:
    content = csv_bytes("accuracy,latency_ms", "0.95,100", "0.85,300", "0.5,n/a", "1.0,800")
    summary = assess_table(content, "m.csv", THRESHOLDS).summary()
    assert summary["rows"] == 4
    assert summary["status_counts"] == {"pass": 1, "warn": 1, "fail": 2}
    assert summary["columns"]["accuracy"] == {
        "counts": {"pass": 2, "warn": 1, "fail": 1, "invalid": 0, "missing": 0},
        "numeric_count": 4,
        "min": 0.5,
        "max": 1.0,
        "mean": pytest.approx(0.825),
    }
    assert summary["columns"]["latency_ms"] == {
        "counts": {"pass": 1, "warn": 1, "fail": 1, "invalid": 1, "missing": 0},
        "numeric_count": 3,
        "min": 100.0,
        "max": 800.0,
        "mean": pytest.approx(400.0),
    }


def test_a_missing_column_is_reported_once_and_missing_in_every_row() -> None:
    content = csv_bytes("model,accuracy", "a,0.95", "b,0.85")
    result = assess_table(content, "m.csv", THRESHOLDS).to_result()
    assert result["missing_columns"] == ["latency_ms"]
    assert [row["metrics"]["latency_ms"] for row in result["rows"]] == [{"status": "missing"}] * 2
    assert [row["status"] for row in result["rows"]] == ["fail", "fail"]  # missing counts as fail
    latency = result["summary"]["columns"]["latency_ms"]
    assert latency["counts"]["missing"] == 2
    assert (latency["numeric_count"], latency["min"], latency["max"], latency["mean"]) == (0, None, None, None)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("n/a", "not a number"),
        ("0,95", "not a number (the decimal separator must be '.')"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("1_000", "not a number"),
        ("0x10", "not a number"),
        ("1e999", "not a finite number"),
    ],
)
def test_cells_that_are_not_finite_numbers_are_invalid_with_the_raw_value(cell: str, reason: str) -> None:
    content = f"model;accuracy;latency_ms\na;{cell};100\nb;0.95;100\n".encode()
    result = assess_table(content, "m.csv", THRESHOLDS).to_result()
    row = result["rows"][0]
    assert row["metrics"]["accuracy"] == {"status": "invalid", "raw": cell, "reason": reason}
    assert row["metrics"]["latency_ms"] == {"status": "pass", "value": 100.0}
    assert row["status"] == "fail"  # invalid counts as fail
    assert result["summary"]["columns"]["accuracy"]["counts"]["invalid"] == 1


@pytest.mark.parametrize("cell", [" 0.95 ", "+0.95", ".95", "9.5e-1", "95E-2"])
def test_plain_decimal_numbers_are_accepted(cell: str) -> None:
    content = f"model;accuracy\na;{cell}\n".encode()
    metric = assess_table(content, "m.csv", THRESHOLDS).to_result()["rows"][0]["metrics"]["accuracy"]
    assert metric == {"status": "pass", "value": 0.95}


def test_long_invalid_cells_are_shortened() -> None:
    content = f"model,accuracy\na,{'x' * 5000}\n".encode()
    metric = assess_table(content, "m.csv", THRESHOLDS).rows[0].metrics[0]
    assert metric.raw is not None and len(metric.raw) == 101 and metric.raw.endswith("…")


def test_semicolon_delimited_csv() -> None:
    content = csv_bytes("model,accuracy,latency_ms", "a,0.95,120", "b,0.85,600", delimiter=";")
    report = assess_table(content, "m.csv", THRESHOLDS)
    assert (report.kind, report.delimiter) == ("csv", ";")
    assert [row.status for row in report.rows] == ["pass", "fail"]


def test_tsv_with_a_byte_order_mark_and_padded_header() -> None:
    content = b"\xef\xbb\xbfmodel\t accuracy \tlatency_ms\r\na\t0.95\t120\r\nb\t0.85\t150\r\n"
    report = assess_table(content, "m.tsv", THRESHOLDS)
    assert (report.kind, report.delimiter, report.encoding) == ("tsv", "\t", "utf-8-sig")
    assert report.header == ("model", "accuracy", "latency_ms")
    assert [row.status for row in report.rows] == ["pass", "warn"]


def test_the_first_of_duplicate_header_columns_is_used() -> None:
    content = csv_bytes("accuracy,accuracy,latency_ms", "0.95,0.1,100")
    assert assess_table(content, "m.csv", THRESHOLDS).rows[0].status == "pass"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32), "unsupported content: image/png"),
        (b"just some words", "m.csv is not a table"),
        (b"accuracy\n0.9\n", "m.csv is not a table"),  # one column
        (b"model,accuracy\n", "m.csv is not a table"),  # header only
        (b"model,accuracy\na,0.9,extra\n", "m.csv is not a table"),  # ragged
    ],
)
def test_content_that_is_not_a_table_is_unsupported(content: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedDocument, match=reason):
        assess_table(content, "m.csv", THRESHOLDS)


def test_row_details_are_capped_but_every_row_is_counted() -> None:
    lines = ["accuracy,latency_ms"] + ["0.95,100"] * 5 + ["0.5,100"] * 3
    report = assess_table(csv_bytes(*lines), "m.csv", THRESHOLDS, max_row_details=4)
    result = report.to_result()
    assert [row["row"] for row in result["rows"]] == [1, 2, 3, 4]
    assert result["rows_truncated"] is True
    assert result["summary"]["rows"] == 8
    assert result["summary"]["status_counts"] == {"pass": 5, "warn": 0, "fail": 3}
    assert result["summary"]["columns"]["accuracy"]["counts"]["fail"] == 3
    assert assess_table(csv_bytes(*lines), "m.csv", THRESHOLDS, max_row_details=8).rows_truncated is False
    with pytest.raises(ValueError, match="max_row_details"):
        assess_table(csv_bytes(*lines), "m.csv", THRESHOLDS, max_row_details=-1)


def test_the_checkpoint_is_called_every_thousand_rows_and_can_stop_the_job() -> None:
    lines = ["accuracy,latency_ms"] + ["0.95,100"] * (2 * CHECKPOINT_EVERY_ROWS + 500)
    calls: list[None] = []
    assess_table(csv_bytes(*lines), "m.csv", THRESHOLDS, checkpoint=lambda: calls.append(None))
    assert len(calls) == 2

    class Cancelled(Exception):
        pass

    def cancel() -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        assess_table(csv_bytes(*lines), "m.csv", THRESHOLDS, checkpoint=cancel)


def test_the_result_is_json_serialisable() -> None:
    content = csv_bytes("model,accuracy", "a,", "b,1e999", "c,0.5")
    result = assess_table(content, "m.csv", THRESHOLDS).to_result()
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_batch_summary_adds_up_the_jobs() -> None:
    first = assess_table(csv_bytes("accuracy,latency_ms", "0.95,100", "0.85,100"), "a.csv", THRESHOLDS)
    second = assess_table(csv_bytes("model,accuracy", "a,0.5", "b,1.0", "c,x"), "b.csv", THRESHOLDS, max_row_details=1)
    stored = [json.loads(json.dumps(report.to_result())) for report in (first, second)]
    batch = summarise_batch(stored)
    assert batch["jobs"] == 2
    assert batch["rows"] == 5
    assert batch["jobs_with_rows_truncated"] == 1
    assert batch["status_counts"] == {"pass": 1, "warn": 1, "fail": 3}
    assert batch["missing_columns"] == {"latency_ms": 1}
    assert batch["columns"]["accuracy"] == {
        "counts": {"pass": 2, "warn": 1, "fail": 1, "invalid": 1, "missing": 0},
        "numeric_count": 4,
        "min": 0.5,
        "max": 1.0,
        "mean": pytest.approx(0.825),
    }
    assert batch["columns"]["latency_ms"] == {
        "counts": {"pass": 2, "warn": 0, "fail": 0, "invalid": 0, "missing": 3},
        "numeric_count": 2,
        "min": 100.0,
        "max": 100.0,
        "mean": pytest.approx(100.0),
    }


def test_batch_summary_of_no_jobs_is_empty() -> None:
    assert summarise_batch([]) == {
        "jobs": 0,
        "rows": 0,
        "jobs_with_rows_truncated": 0,
        "status_counts": {"pass": 0, "warn": 0, "fail": 0},
        "columns": {},
        "missing_columns": {},
    }
