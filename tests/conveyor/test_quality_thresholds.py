from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor.quality_thresholds import (
    MAX_COLUMNS,
    InvalidThresholds,
    QualityThresholds,
    Threshold,
    parse_thresholds,
)

DOCUMENT = {
    "columns": {
        "accuracy": {"warning": 0.9, "fail": 0.8, "direction": "higher_better"},
        "latency_ms": {"warning": 200, "fail": 500, "direction": "lower_better"},
    }
}


def test_a_valid_document_parses_in_column_order() -> None:
    thresholds = parse_thresholds(DOCUMENT)
    assert list(thresholds) == [
        Threshold("accuracy", warning=0.9, fail=0.8, direction="higher_better"),
        Threshold("latency_ms", warning=200.0, fail=500.0, direction="lower_better"),
    ]
    assert thresholds.columns == ("accuracy", "latency_ms")
    assert len(thresholds) == 2


def test_direction_defaults_to_higher_better() -> None:
    thresholds = parse_thresholds({"columns": {"score": {"warning": 5, "fail": 2}}})
    assert thresholds.thresholds == (Threshold("score", 5.0, 2.0, "higher_better"),)


def test_canonical_json_round_trips_through_the_ledger() -> None:
    thresholds = parse_thresholds({"columns": {"score": {"fail": 2, "warning": 5}, **DOCUMENT["columns"]}})
    stored = json.dumps(thresholds.to_json())
    assert parse_thresholds(json.loads(stored)) == thresholds
    assert json.loads(stored) == {
        "columns": {
            "score": {"warning": 5.0, "fail": 2.0, "direction": "higher_better"},
            "accuracy": {"warning": 0.9, "fail": 0.8, "direction": "higher_better"},
            "latency_ms": {"warning": 200.0, "fail": 500.0, "direction": "lower_better"},
        }
    }


def test_equal_warning_and_fail_are_allowed() -> None:
    thresholds = parse_thresholds({"columns": {"a": {"warning": 1, "fail": 1, "direction": "lower_better"}}})
    assert thresholds.thresholds[0].classify(0.5) == "pass"
    assert thresholds.thresholds[0].classify(1) == "fail"


def column(**spec: Any) -> dict[str, Any]:
    return {"columns": {"accuracy": spec}}


@pytest.mark.parametrize(
    ("document", "message", "field"),
    [
        ([1, 2], "thresholds must be a JSON object, not an array", None),
        ({}, "thresholds must have a columns object", "columns"),
        ({"columns": {}, "extra": 1}, "unknown key 'extra' in thresholds", "extra"),
        ({"columns": []}, "columns must be a JSON object, not an array", "columns"),
        ({"columns": {}}, "columns must name at least one column", "columns"),
        ({"columns": {"": {"warning": 1, "fail": 0}}}, "column names must not be empty", "columns"),
        ({"columns": {" a": {"warning": 1, "fail": 0}}}, "column ' a': the name must not start or end", None),
        ({"columns": {"accuracy": 0.9}}, "column 'accuracy' must be a JSON object, not a number", None),
        (column(warning=0.9), "column 'accuracy': fail is missing", "fail"),
        (column(fail=0.8), "column 'accuracy': warning is missing", "warning"),
        (column(warning="0.9", fail=0.8), "column 'accuracy': warning must be a number, not a string '0.9'", "warning"),
        (column(warning=0.9, fail=None), "column 'accuracy': fail must be a number, not null", "fail"),
        (column(warning=True, fail=0.8), "column 'accuracy': warning must be a number, not a boolean", "warning"),
        (column(warning=float("nan"), fail=0.8), "column 'accuracy': warning must be finite, not nan", "warning"),
        (column(warning=0.9, fail=float("-inf")), "column 'accuracy': fail must be finite, not -inf", "fail"),
        (column(warning=10**400, fail=0.8), "column 'accuracy': warning must be finite", "warning"),
        (column(warning=0.9, fail=0.8, min=0), "column 'accuracy': unknown key 'min'", "min"),
        (column(warning=0.9, fail=0.8, direction="up"), "column 'accuracy': direction must be one of", "direction"),
        (column(warning=0.9, fail=0.8, direction=1), "direction must be one of .* not a number", "direction"),
        (
            column(warning=0.8, fail=0.9),
            r"column 'accuracy': fail \(0.9\) must be at most warning \(0.8\) when direction is higher_better",
            "fail",
        ),
        (
            column(warning=500, fail=200, direction="lower_better"),
            r"column 'accuracy': fail \(200\) must be at least warning \(500\) when direction is lower_better",
            "fail",
        ),
    ],
)
def test_invalid_documents_are_rejected_naming_the_column_and_field(
    document: object, message: str, field: str | None
) -> None:
    with pytest.raises(InvalidThresholds, match=message) as raised:
        parse_thresholds(document)
    assert raised.value.field == field
    assert isinstance(raised.value, ValueError)


def test_more_than_the_maximum_number_of_columns_is_rejected() -> None:
    spec = {"warning": 1, "fail": 0}
    assert len(parse_thresholds({"columns": {f"c{i}": spec for i in range(MAX_COLUMNS)}})) == MAX_COLUMNS
    with pytest.raises(InvalidThresholds, match=f"columns names {MAX_COLUMNS + 1} columns; at most {MAX_COLUMNS}"):
        parse_thresholds({"columns": {f"c{i}": spec for i in range(MAX_COLUMNS + 1)}})


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidThresholds) as raised:
        parse_thresholds(column(warning="x" * 10_000, fail=0))
    assert len(str(raised.value)) < 200


def test_constructed_thresholds_are_validated_like_parsed_ones() -> None:
    with pytest.raises(InvalidThresholds, match="column 'a' is given twice"):
        QualityThresholds((Threshold("a", 1, 0), Threshold("a", 2, 1)))
    with pytest.raises(InvalidThresholds, match="fail .* must be at most warning"):
        Threshold("a", warning=0, fail=1)
    assert Threshold("a", warning=2, fail=1).to_json() == {"warning": 2.0, "fail": 1.0, "direction": "higher_better"}


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.95, "pass"), (0.9, "warn"), (0.85, "warn"), (0.8, "fail"), (0.1, "fail")],
)
def test_higher_better_reaching_a_threshold_crosses_it(value: float, status: str) -> None:
    assert Threshold("accuracy", warning=0.9, fail=0.8).classify(value) == status


@pytest.mark.parametrize(
    ("value", "status"),
    [(100, "pass"), (199.99, "pass"), (200, "warn"), (499, "warn"), (500, "fail"), (10_000, "fail")],
)
def test_lower_better_reaching_a_threshold_crosses_it(value: float, status: str) -> None:
    assert Threshold("latency_ms", warning=200, fail=500, direction="lower_better").classify(value) == status
