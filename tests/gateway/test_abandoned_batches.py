from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor.ledger import BatchStatus, JobState, Ledger, NewJob
from gateway.abandoned_batches import ABANDONED_AFTER, REASON, cancel_abandoned_batches


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_old_unpublished_batches_are_cancelled(ledger: Ledger) -> None:
    client_id = ledger.create_client(name="c", tier="free", scopes=[], secret_hash="x").id
    job = [NewJob(pipeline="document", filename="a.txt", blob_sha256="c" * 64, size_bytes=1)]
    unpublished, _ = ledger.create_batch(client_id, priority=1, new_jobs=job)
    published, _ = ledger.create_batch(client_id, priority=1, new_jobs=job)
    ledger.mark_published(published.id)

    assert cancel_abandoned_batches(ledger, now=datetime.now(UTC)) == []  # too young to judge
    later = datetime.now(UTC) + ABANDONED_AFTER + timedelta(seconds=1)
    assert cancel_abandoned_batches(ledger, now=later) == [unpublished.id]
    assert cancel_abandoned_batches(ledger, now=later) == []  # once

    cancelled = ledger.get_batch(unpublished.id, client_id)
    assert (cancelled.status, cancelled.status_reason) == (BatchStatus.CANCELLED, REASON)
    assert [j.state for j in ledger.list_jobs(unpublished.id)] == [JobState.CANCELLED]
    assert ledger.get_batch(published.id, client_id).status == BatchStatus.PENDING
