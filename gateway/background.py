"""Periodic upkeep inside a gateway process, off the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)


async def every(interval_seconds: float, task: Callable[[], object]) -> None:
    """Run the blocking ``task`` every ``interval_seconds`` until cancelled; a
    failure is logged and the next run goes ahead."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await run_in_threadpool(task)
        except Exception:
            logger.exception("periodic task %s failed; next run in %.0f s", getattr(task, "__name__", task), interval_seconds)
