"""Per-column thresholds of the CSV quality pipeline, as a client sends them.

Shared by the gateway, which validates a batch's thresholds at upload time, and
the worker, which classifies values with them.  The ledger keeps the canonical
form (``QualityThresholds.to_json()``) and reads it back with
``parse_thresholds``, so both sides always agree on one validated shape::

    {"columns": {"accuracy": {"warning": 0.9, "fail": 0.8, "direction": "higher_better"},
                 "latency_ms": {"warning": 200, "fail": 500, "direction": "lower_better"}}}

A threshold is reached when the value is equal to it: for ``higher_better``
a value at or below ``fail`` fails and one at or below ``warning`` warns; for
``lower_better`` a value at or above ``fail`` fails and one at or above
``warning`` warns.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

Direction = Literal["higher_better", "lower_better"]
Status = Literal["pass", "warn", "fail"]

DIRECTIONS: tuple[Direction, ...] = get_args(Direction)
DEFAULT_DIRECTION: Direction = "higher_better"
MAX_COLUMNS = 200
MAX_COLUMN_NAME_CHARACTERS = 200
_COLUMN_KEYS = ("warning", "fail", "direction")
_DOCUMENT_KEYS = ("columns",)
_short_repr = reprlib.Repr()
_short_repr.maxstring = 60
_short_repr.maxother = 60


class InvalidThresholds(ValueError):
    """Thresholds a client sent that cannot be used; the message names the
    column and field at fault (also kept as ``column`` and ``field``)."""

    def __init__(self, message: str, column: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.field = field


@dataclass(frozen=True)
class Threshold:
    """Warning and fail levels of one numeric column."""

    column: str
    warning: float
    fail: float
    direction: Direction = DEFAULT_DIRECTION

    def __post_init__(self) -> None:
        _check_column_name(self.column)
        if self.direction not in DIRECTIONS:
            raise InvalidThresholds(
                f"column {self.column!r}: direction must be one of {', '.join(DIRECTIONS)}, "
                f"not {_short_repr.repr(self.direction)}",
                self.column,
                "direction",
            )
        for name in ("warning", "fail"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidThresholds(
                    f"column {self.column!r}: {name} must be a finite number, not {_short_repr.repr(value)}",
                    self.column,
                    name,
                )
            object.__setattr__(self, name, float(value))
        if self.direction == "higher_better" and self.fail > self.warning:
            raise InvalidThresholds(
                f"column {self.column!r}: fail ({self.fail:g}) must be at most warning ({self.warning:g}) "
                "when direction is higher_better",
                self.column,
                "fail",
            )
        if self.direction == "lower_better" and self.fail < self.warning:
            raise InvalidThresholds(
                f"column {self.column!r}: fail ({self.fail:g}) must be at least warning ({self.warning:g}) "
                "when direction is lower_better",
                self.column,
                "fail",
            )

    def classify(self, value: float) -> Status:
        """Status of a finite ``value``: reaching a threshold counts as crossing it."""
        if self.direction == "higher_better":
            if value <= self.fail:
                return "fail"
            return "warn" if value <= self.warning else "pass"
        if value >= self.fail:
            return "fail"
        return "warn" if value >= self.warning else "pass"

    def to_json(self) -> dict[str, Any]:
        return {"warning": self.warning, "fail": self.fail, "direction": self.direction}


@dataclass(frozen=True)
class QualityThresholds:
    """The thresholds of a batch, in the order the client listed the columns."""

    thresholds: tuple[Threshold, ...]

    def __post_init__(self) -> None:
        if not self.thresholds:
            raise InvalidThresholds("columns must name at least one column", field="columns")
        if len(self.thresholds) > MAX_COLUMNS:
            raise InvalidThresholds(
                f"columns names {len(self.thresholds)} columns; at most {MAX_COLUMNS} are allowed", field="columns"
            )
        seen: set[str] = set()
        for threshold in self.thresholds:
            if threshold.column in seen:
                raise InvalidThresholds(f"column {threshold.column!r} is given twice", threshold.column)
            seen.add(threshold.column)

    def __iter__(self) -> Iterator[Threshold]:
        return iter(self.thresholds)

    def __len__(self) -> int:
        return len(self.thresholds)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(threshold.column for threshold in self.thresholds)

    def to_json(self) -> dict[str, Any]:
        """The canonical document: every field explicit, numbers as floats."""
        return {"columns": {threshold.column: threshold.to_json() for threshold in self.thresholds}}


def parse_thresholds(document: object) -> QualityThresholds:
    """Validated thresholds from a decoded JSON document; InvalidThresholds otherwise."""
    if not isinstance(document, dict):
        raise InvalidThresholds(f"thresholds must be a JSON object, not {_json_type(document)}")
    for key in document:
        if key not in _DOCUMENT_KEYS:
            raise InvalidThresholds(
                f"unknown key {_short_repr.repr(key)} in thresholds (expected: columns)", field=str(key)
            )
    if "columns" not in document:
        raise InvalidThresholds("thresholds must have a columns object", field="columns")
    columns = document["columns"]
    if not isinstance(columns, dict):
        raise InvalidThresholds(f"columns must be a JSON object, not {_json_type(columns)}", field="columns")
    if len(columns) > MAX_COLUMNS:
        raise InvalidThresholds(
            f"columns names {len(columns)} columns; at most {MAX_COLUMNS} are allowed", field="columns"
        )
    return QualityThresholds(tuple(_parse_column(name, spec) for name, spec in columns.items()))


def _parse_column(name: object, spec: object) -> Threshold:
    if not isinstance(name, str):
        raise InvalidThresholds(f"column names must be strings, not {_json_type(name)}", field="columns")
    _check_column_name(name)
    if not isinstance(spec, dict):
        raise InvalidThresholds(f"column {name!r} must be a JSON object, not {_json_type(spec)}", name)
    for key in spec:
        if key not in _COLUMN_KEYS:
            raise InvalidThresholds(
                f"column {name!r}: unknown key {_short_repr.repr(key)} (expected: {', '.join(_COLUMN_KEYS)})",
                name,
                str(key),
            )
    levels = {field: _number(name, field, spec) for field in ("warning", "fail")}
    direction = spec.get("direction", DEFAULT_DIRECTION)
    if not isinstance(direction, str):
        raise InvalidThresholds(
            f"column {name!r}: direction must be one of {', '.join(DIRECTIONS)}, not {_json_type(direction)}",
            name,
            "direction",
        )
    return Threshold(name, levels["warning"], levels["fail"], direction)  # type: ignore[arg-type]


def _number(column: str, field: str, spec: dict[Any, Any]) -> float:
    if field not in spec:
        raise InvalidThresholds(f"column {column!r}: {field} is missing", column, field)
    value = spec[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidThresholds(
            f"column {column!r}: {field} must be a number, not {_json_type(value)} {_short_repr.repr(value)}",
            column,
            field,
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InvalidThresholds(
            f"column {column!r}: {field} must be finite, not {_short_repr.repr(value)}", column, field
        )
    return number


def _check_column_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidThresholds(f"column names must not be empty, not {_short_repr.repr(name)}", field="columns")
    if name != name.strip():
        raise InvalidThresholds(f"column {name!r}: the name must not start or end with whitespace", name)
    if len(name) > MAX_COLUMN_NAME_CHARACTERS:
        raise InvalidThresholds(
            f"column {_short_repr.repr(name)}: the name is longer than {MAX_COLUMN_NAME_CHARACTERS} characters",
            name,
        )


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
