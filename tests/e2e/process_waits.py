"""Waiting in end-to-end tests for something the started processes should bring about."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from conveyor.processes import ManagedProcess


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, processes: Sequence[ManagedProcess] = ()
) -> object:
    """``condition()``'s first truthy value within ``timeout`` seconds; otherwise
    fail naming ``what``, with the end of each process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    logs = "\n\n".join(f"--- {process.name}\n{process.log_tail(60)}" for process in processes)
    raise AssertionError(f"{what} not seen after {timeout}s\n{logs}")
