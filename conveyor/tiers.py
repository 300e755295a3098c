"""Service tiers: what a client's tier entitles it to."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIERS_FILE = Path(__file__).with_name("tiers.toml")


class TierError(ValueError):
    """The tiers file is malformed or names an unknown tier."""


@dataclass(frozen=True)
class Tier:
    name: str
    priority: int


class Tiers:
    """The tiers read from a TOML file, looked up by name."""

    def __init__(self, tiers: dict[str, Tier]) -> None:
        if not tiers:
            raise TierError("no tiers defined")
        self._tiers = tiers

    @classmethod
    def load(cls, path: Path, max_priority: int) -> Tiers:
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise TierError(f"{path}: {error}") from None
        tiers = {}
        for name, table in document.get("tiers", {}).items():
            priority = table.get("priority")
            if not isinstance(priority, int) or not 0 <= priority <= max_priority:
                raise TierError(f"{path}: tier {name!r}: priority must be an integer from 0 to {max_priority}")
            tiers[name] = Tier(name=name, priority=priority)
        return cls(tiers)

    def __getitem__(self, name: str) -> Tier:
        try:
            return self._tiers[name]
        except KeyError:
            raise TierError(f"unknown tier {name!r} (known: {', '.join(self.names)})") from None

    @property
    def names(self) -> list[str]:
        return sorted(self._tiers, key=lambda name: self._tiers[name].priority)
