"""Submitting batches of the test pipelines (``workloads.py``) straight to the
ledger and RabbitMQ, as the gateway would, for tests about workers."""

from __future__ import annotations

import time
from collections.abc import Callable

from conveyor.blobs import BlobStore
from conveyor.broker import create_broker
from conveyor.credentials import IssuedCredential
from conveyor.ledger import BatchRecord, BatchStatus, JobRecord, JobState, Ledger, NewJob, create_ledger_engine
from conveyor.settings import Settings
from workload_routes import ROUTES

FINAL = {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.PARTIALLY_COMPLETED, BatchStatus.CANCELLED}


class Workloads:
    """Records batches of workload jobs and publishes them (confirmed), like the gateway."""

    def __init__(self, settings: Settings, credential: IssuedCredential) -> None:
        self.ledger = Ledger(create_ledger_engine(settings.database_url))
        self.broker = create_broker(settings, confirm_delivery=True)
        self.blob = BlobStore(settings.blob_dir).put(b"workload")
        self.credential = credential
        self.client_id = credential.client.id

    def submit(self, jobs: list[tuple[str, str]]) -> BatchRecord:
        """``jobs``: (pipeline, filename) pairs."""
        new_jobs = [NewJob(pipeline=name, filename=filename, blob_sha256=self.blob, size_bytes=8) for name, filename in jobs]
        batch, records = self.ledger.create_batch(self.client_id, priority=1, new_jobs=new_jobs)
        for record in records:
            self.broker.enqueue(ROUTES[record.pipeline].job_message(record.id, 1))
        self.ledger.mark_published(batch.id)
        return batch

    def batch(self, batch_id: str) -> BatchRecord:
        return self.ledger.get_batch(batch_id, self.client_id)

    def jobs(self, batch_id: str) -> list[JobRecord]:
        return self.ledger.list_jobs(batch_id)

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not true after {timeout}s: {what}")
            time.sleep(0.05)

    def wait_for_end(self, batch_id: str, timeout: float = 120) -> BatchRecord:
        self.wait_until(lambda: self.batch(batch_id).status in FINAL, timeout, f"batch {batch_id} ended")
        return self.batch(batch_id)

    def running(self, batch_id: str) -> int:
        return sum(job.state == JobState.RUNNING for job in self.jobs(batch_id))

    def close(self) -> None:
        self.broker.close()
        self.ledger.engine.dispose()
