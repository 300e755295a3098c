"""Cancels batches whose gateway died between recording and publishing them.

Such a batch was never acknowledged to its client (no 202), and some of its
jobs may never have been published; left alone they would stay PENDING
forever.  Every replica runs this sweep: it is idempotent, and a batch is
only considered once it is far older than any publish takes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from conveyor.ledger import Ledger

logger = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(minutes=5)
SWEEP_INTERVAL_SECONDS = 60.0
REASON = "not queued: the gateway stopped before the batch was fully published"


def cancel_abandoned_batches(ledger: Ledger, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    batch_ids = ledger.abandoned_batch_ids(created_before=now - ABANDONED_AFTER)
    for batch_id in batch_ids:
        ledger.cancel_batch(batch_id, REASON)
        logger.warning("batch %s cancelled: %s", batch_id, REASON)
    return batch_ids
