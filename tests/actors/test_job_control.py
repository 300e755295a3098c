"""Stopping, limiting, fanning out and finishing jobs, with Dramatiq's StubBroker
and a real SQLite ledger: cancellation at checkpoints, soft and hard time
limits, fanned-out documents and the batch-finished hook for webhooks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries

from actors.document_analysis import ChunkingPolicy, analyse_document
from actors.job_context import current_job
from actors.ledger_middleware import SOFT_TIME_LIMIT, JobLedger
from actors.registry import pipeline_actor, register_actors
from conveyor.blobs import BlobStore
from conveyor.ledger import BatchRecord, BatchStatus, JobState, Ledger, NewJob
from conveyor.pipelines import DOCUMENT_PARTS, PIPELINES, PipelineRoute
from conveyor.settings import Settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TEST_ROUTE = PipelineRoute(queue_name="t", actor_name="test_pipeline")


class Harness:
    def __init__(self, ledger: Ledger, tmp_path: Path, settings: Settings) -> None:
        self.ledger = ledger
        self.blobs = BlobStore(tmp_path / "blobs")
        self.finished: list[BatchRecord] = []
        self.broker = StubBroker()
        self.broker.add_middleware(JobLedger(ledger, self.blobs, settings, self.finished.append), before=Retries)
        self.client_id = ledger.create_client(name="c", tier="free", scopes=[], secret_hash="x").id

    def batch(self, count: int = 1, content: bytes = b"some text", **options):
        digest = self.blobs.put(content)
        jobs = [NewJob(pipeline="document", filename="f.txt", blob_sha256=digest, size_bytes=len(content))] * count
        return self.ledger.create_batch(self.client_id, priority=1, new_jobs=jobs, **options)

    def start_worker(self) -> dramatiq.Worker:
        self.broker.emit_after("process_boot")  # what the dramatiq CLI does; starts the time-limit timer
        worker = dramatiq.Worker(self.broker, worker_timeout=50, worker_threads=2)
        worker.start()
        return worker


@pytest.fixture
def harness(ledger: Ledger, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(ledger, tmp_path, Settings.from_env({"CONVEYOR_CHUNK_SIZE": "100", "CONVEYOR_CHUNK_OVERLAP": "10"}))
    worker = harness.start_worker()
    yield harness
    worker.stop()
    harness.broker.close()


def test_a_running_job_stops_at_its_next_checkpoint_when_its_batch_is_cancelled(harness: Harness) -> None:
    started = threading.Event()
    steps: list[int] = []

    def long_job(job_id: str) -> None:
        job = current_job()
        for step in range(200):
            job.checkpoint()
            steps.append(step)
            job.result = {"steps_done": step + 1}
            started.set()
            time.sleep(0.05)

    actor = pipeline_actor(long_job, harness.broker, TEST_ROUTE)
    batch, (job,) = harness.batch()
    actor.send(job_id=job.id)
    assert started.wait(5)
    harness.ledger.cancel_batch(batch.id, "cancelled by the client")
    harness.broker.join("t", timeout=10_000)
    (stopped,) = harness.ledger.list_jobs(batch.id)
    assert stopped.state == JobState.CANCELLED
    assert stopped.result["partial"] is True and stopped.result["steps_done"] == len(steps) < 200
    final = harness.ledger.get_batch(batch.id, harness.client_id)
    assert (final.status, final.cancelled_jobs) == (BatchStatus.CANCELLED, 1)


def test_the_soft_time_limit_records_a_partial_result(harness: Harness) -> None:
    def slow_job(job_id: str) -> None:
        job = current_job()
        job.result = {"pages": []}
        for page in range(1000):
            job.checkpoint()
            job.result["pages"].append(page)
            time.sleep(0.01)

    actor = pipeline_actor(slow_job, harness.broker, TEST_ROUTE, **{SOFT_TIME_LIMIT: 300})
    batch, (job,) = harness.batch()
    actor.send(job_id=job.id)
    harness.broker.join("t", timeout=10_000)
    (done,) = harness.ledger.list_jobs(batch.id)
    assert done.state == JobState.SUCCEEDED and done.attempts == 1
    assert done.result["partial"] is True
    assert done.result["partial_reason"] == "soft time limit of 0.3 s reached"
    assert 5 < len(done.result["pages"]) < 1000


def test_past_the_hard_time_limit_the_job_fails_without_retry(harness: Harness) -> None:
    def stuck_job(job_id: str) -> None:
        for _ in range(600):
            time.sleep(0.01)  # never reaches a checkpoint

    actor = pipeline_actor(stuck_job, harness.broker, TEST_ROUTE, time_limit=300, max_retries=3)
    batch, (job,) = harness.batch()
    actor.send(job_id=job.id)
    harness.broker.join("t", timeout=10_000, fail_fast=False)
    (failed,) = harness.ledger.list_jobs(batch.id)
    assert (failed.state, failed.attempts, failed.error) == (JobState.FAILED, 1, "hard time limit of 0.3 s exceeded")
    assert len(harness.broker.dead_letters) == 1


def test_a_large_document_fans_out_into_parts_and_counts_as_one_job(harness: Harness) -> None:
    register_actors(harness.broker)
    text = " ".join(f"word{i % 97} alpha beta gamma" for i in range(3000)).encode()
    batch, (job,) = harness.batch(content=text)
    harness.broker.enqueue(PIPELINES["document"].job_message(job.id, 1))
    harness.broker.join(PIPELINES["document"].queue_name, timeout=10_000)
    harness.broker.join(DOCUMENT_PARTS.queue_name, timeout=30_000)
    (done,) = harness.ledger.list_jobs(batch.id)
    expected = analyse_document(text, "f.txt", ChunkingPolicy(size=100, overlap=10))
    assert done.state == JobState.SUCCEEDED
    assert done.result["parts"] == (len(expected.chunks) + 31) // 32 > 1
    assert [chunk["index"] for chunk in done.result["chunks"]] == list(range(len(expected.chunks)))
    assert sum(chunk["words"] for chunk in done.result["chunks"]) >= expected.word_count
    assert "alpha" in done.result["keywords"] and "part_chunks" not in done.result
    assert done.output_sha256 == done.result["text_sha256"]
    final = harness.ledger.get_batch(batch.id, harness.client_id)
    assert (final.status, final.total_jobs, final.succeeded_jobs) == (BatchStatus.COMPLETED, 1, 1)


def test_the_batch_finished_hook_runs_once_for_a_batch_with_a_callback(harness: Harness) -> None:
    def quick_job(job_id: str) -> None:
        current_job().result = {"ok": True}

    actor = pipeline_actor(quick_job, harness.broker, TEST_ROUTE)
    with_callback, jobs = harness.batch(count=3, callback_url="http://127.0.0.1:9/hook")
    without_callback, other_jobs = harness.batch(count=2)
    for job in [*jobs, *other_jobs, *jobs]:  # the first batch's messages twice: redeliveries
        actor.send(job_id=job.id)
    harness.broker.join("t", timeout=10_000)
    assert [batch.id for batch in harness.finished] == [with_callback.id]
    assert harness.finished[0].webhook_state == "PENDING"
