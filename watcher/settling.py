"""Deciding when a file has stopped changing.

A writer may take any time to fill a file, and filesystem events say only
that something happened.  A file is *settled* once its size and modification
time (nanoseconds) have stayed the same for ``settle_seconds``; until then it
is a *candidate*, re-examined on every tick.  :class:`SettleTracker` is pure:
it is told each candidate's current :class:`FileState` and asks an injected
clock for the time, so tests drive it without sleeping.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


def file_state(path: Path) -> FileState | None:
    """The state of the regular file at ``path``; ``None`` if it is gone or not a regular file."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return FileState(size=info.st_size, mtime_ns=info.st_mtime_ns)


@dataclass
class _Candidate:
    state: FileState
    changed_at: float
    not_before: float


class SettleTracker:
    """Candidate files of one directory, and when each last changed."""

    def __init__(self, settle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle_seconds = settle_seconds
        self._clock = clock
        self._candidates: dict[Path, _Candidate] = {}

    def __len__(self) -> int:
        return len(self._candidates)

    def __contains__(self, path: object) -> bool:
        return path in self._candidates

    def candidates(self) -> list[Path]:
        return list(self._candidates)

    def observe(self, path: Path, state: FileState | None) -> None:
        """Record ``path``'s current state (``None``: it is gone, so no longer a candidate).

        A new candidate, or one whose state differs from the last one seen,
        starts its settle time again.
        """
        if state is None:
            self._candidates.pop(path, None)
            return
        now = self._clock()
        candidate = self._candidates.get(path)
        if candidate is None:
            self._candidates[path] = _Candidate(state, changed_at=now, not_before=now)
        elif candidate.state != state:
            candidate.state = state
            candidate.changed_at = now

    def retry_later(self, path: Path, state: FileState, delay: float) -> None:
        """Make ``path`` a candidate again that is not reported before ``delay`` seconds from now."""
        now = self._clock()
        self._candidates[path] = _Candidate(state, changed_at=now, not_before=now + delay)

    def discard(self, path: Path) -> None:
        self._candidates.pop(path, None)

    def settled(self) -> list[tuple[Path, FileState]]:
        """Candidates unchanged for ``settle_seconds`` (and past any retry delay), by path; they stop being candidates."""
        now = self._clock()
        ready = sorted(
            path
            for path, candidate in self._candidates.items()
            if now - candidate.changed_at >= self.settle_seconds and now >= candidate.not_before
        )
        return [(path, self._candidates.pop(path).state) for path in ready]
