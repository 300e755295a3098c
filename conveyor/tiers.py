"""Service tiers: what a client's tier entitles it to, read from one TOML file.

Every tier must set every field (a typo or a missing value stops start-up
with the tier and field named); rates use the ``limits`` notation, e.g.
``"10/minute"`` or ``"10/minute;200/hour"``.  The ``[unauthenticated]`` table
limits requests made before a client is known (token requests, health),
per client IP.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import parse_many

DEFAULT_TIERS_FILE = Path(__file__).with_name("tiers.toml")


class TierError(ValueError):
    """The tiers file is malformed or names an unknown tier."""


@dataclass(frozen=True)
class Tier:
    name: str
    priority: int  # RabbitMQ message priority, 0..max_priority
    upload_rate: str  # batch uploads (and other writes), per client
    read_rate: str  # status, results, reports and listings, per client
    max_files_per_batch: int
    max_file_bytes: int
    max_pending_jobs: int  # queued or running jobs a client may have at once
    retention_days: int  # how long results are kept after a batch ends


@dataclass(frozen=True)
class UnauthenticatedLimits:
    auth_rate: str  # token requests per client IP
    probe_rate: str  # health and readiness checks per client IP


_RATE_FIELDS = ("upload_rate", "read_rate", "auth_rate", "probe_rate")


def _validated(path: Path, table_name: str, cls: type, table: Any, **extra: Any) -> Any:
    """``cls`` built from a TOML table whose keys must be exactly ``cls``'s fields."""
    if not isinstance(table, dict):
        raise TierError(f"{path}: [{table_name}] must be a table")
    expected = {field.name for field in dataclasses.fields(cls)} - set(extra)
    missing, unknown = sorted(expected - set(table)), sorted(set(table) - expected)
    if missing:
        raise TierError(f"{path}: [{table_name}] is missing {', '.join(missing)}")
    if unknown:
        raise TierError(f"{path}: [{table_name}] has unknown keys {', '.join(unknown)}")
    for name, value in table.items():
        if name in _RATE_FIELDS:
            if not isinstance(value, str):
                raise TierError(f"{path}: [{table_name}] {name} must be a rate such as \"10/minute\"")
            try:
                parse_many(value)
            except ValueError:
                raise TierError(f"{path}: [{table_name}] {name}: {value!r} is not a rate such as \"10/minute\"") from None
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TierError(f"{path}: [{table_name}] {name} must be a non-negative integer")
    return cls(**extra, **table)


class Tiers:
    """The tiers read from a TOML file, looked up by name."""

    def __init__(self, tiers: dict[str, Tier], unauthenticated: UnauthenticatedLimits) -> None:
        if not tiers:
            raise TierError("no tiers defined")
        self._tiers = tiers
        self.unauthenticated = unauthenticated

    @classmethod
    def load(cls, path: Path, max_priority: int) -> Tiers:
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise TierError(f"{path}: {error}") from None
        tiers = {}
        for name, table in document.get("tiers", {}).items():
            tier = _validated(path, f"tiers.{name}", Tier, table, name=name)
            if not 0 <= tier.priority <= max_priority:
                raise TierError(f"{path}: [tiers.{name}] priority must be an integer from 0 to {max_priority}")
            if tier.max_files_per_batch < 1 or tier.max_file_bytes < 1:
                raise TierError(f"{path}: [tiers.{name}] max_files_per_batch and max_file_bytes must be at least 1")
            tiers[name] = tier
        if "unauthenticated" not in document:
            raise TierError(f"{path}: [unauthenticated] limits are missing")
        unauthenticated = _validated(path, "unauthenticated", UnauthenticatedLimits, document["unauthenticated"])
        return cls(tiers, unauthenticated)

    def __getitem__(self, name: str) -> Tier:
        try:
            return self._tiers[name]
        except KeyError:
            raise TierError(f"unknown tier {name!r} (known: {', '.join(self.names)})") from None

    @property
    def names(self) -> list[str]:
        return sorted(self._tiers, key=lambda name: self._tiers[name].priority)
