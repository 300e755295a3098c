"""The job ledger middleware with Dramatiq's StubBroker and a real SQLite ledger:
what the ledger says after success, permanent and transient failures, and
redelivery."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from prometheus_client import REGISTRY

from actors.job_context import current_job
from actors.ledger_middleware import JobLedger
from conveyor.blobs import BlobStore
from conveyor.ledger import BatchStatus, JobState, Ledger, NewJob
from conveyor.settings import Settings


class BadInput(ValueError):
    pass


@pytest.fixture
def stub(tmp_path: Path, ledger: Ledger) -> Iterator[tuple[StubBroker, dramatiq.Worker]]:
    broker = StubBroker()
    broker.add_middleware(JobLedger(ledger, BlobStore(tmp_path / "blobs"), Settings.from_env({})), before=Retries)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield broker, worker
    worker.stop()
    broker.close()


@pytest.fixture
def client_id(ledger: Ledger) -> str:
    return ledger.create_client(name="c", tier="free", scopes=[], secret_hash="x").id


def _batch(ledger: Ledger, client_id: str, count: int = 1):
    jobs = [NewJob(pipeline="document", filename="f.txt", blob_sha256="b" * 64, size_bytes=1)] * count
    return ledger.create_batch(client_id, priority=1, new_jobs=jobs)


def _run(broker: StubBroker, actor: dramatiq.Actor, job_ids: list[str]) -> None:
    for job_id in job_ids:
        actor.send(job_id=job_id)
    broker.join(actor.queue_name, fail_fast=False, timeout=10_000)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_success_records_the_result(stub, ledger: Ledger, client_id: str) -> None:
    broker, worker = stub

    @dramatiq.actor(broker=broker, queue_name="t")
    def succeed(job_id: str) -> None:
        current_job().result = {"answer": 42, "file": current_job().record.filename}

    batch, (job,) = _batch(ledger, client_id)
    _run(broker, succeed, [job.id])
    (done,) = ledger.list_jobs(batch.id)
    assert (done.state, done.result, done.attempts) == (JobState.SUCCEEDED, {"answer": 42, "file": "f.txt"}, 1)
    assert ledger.get_batch(batch.id, client_id).status == BatchStatus.COMPLETED


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_redelivered_job_is_not_run_again(stub, ledger: Ledger, client_id: str) -> None:
    broker, worker = stub
    runs: list[str] = []

    @dramatiq.actor(broker=broker, queue_name="t")
    def count(job_id: str) -> None:
        runs.append(job_id)

    batch, (job,) = _batch(ledger, client_id)
    _run(broker, count, [job.id])
    _run(broker, count, [job.id])
    assert runs == [job.id]
    assert ledger.get_batch(batch.id, client_id).succeeded_jobs == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_permanent_error_fails_at_once_with_its_reason(stub, ledger: Ledger, client_id: str) -> None:
    broker, worker = stub

    @dramatiq.actor(broker=broker, queue_name="t", throws=(BadInput,), max_retries=5, min_backoff=10)
    def reject(job_id: str) -> None:
        raise BadInput("not a document we can read")

    batch, (job,) = _batch(ledger, client_id)
    _run(broker, reject, [job.id])
    (failed,) = ledger.list_jobs(batch.id)
    assert (failed.state, failed.error, failed.attempts) == (JobState.FAILED, "not a document we can read", 1)
    assert ledger.get_batch(batch.id, client_id).status == BatchStatus.FAILED


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_transient_error_is_retried_then_recorded(stub, ledger: Ledger, client_id: str) -> None:
    broker, worker = stub
    attempts: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="t", max_retries=3, min_backoff=10, max_backoff=20)
    def flaky(job_id: str) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("upstream hiccup")
        current_job().result = {"ok": True}

    batch, (job,) = _batch(ledger, client_id)
    _run(broker, flaky, [job.id])
    (done,) = ledger.list_jobs(batch.id)
    assert (done.state, done.attempts, done.error, done.result) == (JobState.SUCCEEDED, 3, None, {"ok": True})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_retries_exhausted_end_as_failed(stub, ledger: Ledger, client_id: str) -> None:
    broker, worker = stub

    @dramatiq.actor(broker=broker, queue_name="t", max_retries=2, min_backoff=10, max_backoff=20)
    def broken(job_id: str) -> None:
        raise RuntimeError("disk on fire")

    batch, (job,) = _batch(ledger, client_id)
    _run(broker, broken, [job.id])
    (failed,) = ledger.list_jobs(batch.id)
    assert (failed.state, failed.attempts, failed.error) == (JobState.FAILED, 3, "RuntimeError: disk on fire")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_jobs_of_a_cancelled_batch_never_run(stub, ledger: Ledger, client_id: str) -> None:
    broker, worker = stub
    runs: list[str] = []

    @dramatiq.actor(broker=broker, queue_name="t")
    def count(job_id: str) -> None:
        runs.append(job_id)

    batch, jobs = _batch(ledger, client_id, count=3)
    ledger.cancel_batch(batch.id, "cancelled by client")
    _run(broker, count, [job.id for job in jobs])
    assert runs == []
    final = ledger.get_batch(batch.id, client_id)
    assert (final.status, final.cancelled_jobs) == (BatchStatus.CANCELLED, 3)


class LedgerThatLosesOneWrite(Ledger):
    """The real ledger, except that the first success write fails as if the database were down."""

    lost = False

    def succeed_job(self, job_id, result, output_sha256=None):
        if not self.lost:
            self.lost = True
            raise ConnectionError("database went away")
        return super().succeed_job(job_id, result, output_sha256)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_result_the_ledger_could_not_record_is_computed_again(
    tmp_path: Path, ledger: Ledger, client_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actors.ledger_middleware.LEDGER_RETRY_DELAY_MS", 10)
    broker = StubBroker()
    broker.add_middleware(
        JobLedger(LedgerThatLosesOneWrite(ledger.engine), BlobStore(tmp_path / "blobs"), Settings.from_env({})),
        before=Retries,
    )
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        @dramatiq.actor(broker=broker, queue_name="t")
        def produce(job_id: str) -> None:
            current_job().result = {"n": 1}

        batch, (job,) = _batch(ledger, client_id)
        _run(broker, produce, [job.id])
    finally:
        worker.stop()
        broker.close()
    (done,) = ledger.list_jobs(batch.id)
    assert (done.state, done.attempts, done.result) == (JobState.SUCCEEDED, 2, {"n": 1})


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_metrics_count_each_job_end_once_with_its_retries_and_dead_letters(stub, ledger: Ledger, client_id: str) -> None:
    broker, worker = stub
    tries: collections.Counter[str] = collections.Counter()

    @dramatiq.actor(broker=broker, queue_name="t", throws=(BadInput,), max_retries=1, min_backoff=10, max_backoff=20)
    def work(job_id: str) -> None:
        name = current_job().record.filename
        tries[name] += 1
        if name == "bad":
            raise BadInput("unreadable")
        if name == "broken" or (name == "flaky" and tries[name] == 1):
            raise ConnectionError("upstream hiccup")

    counted = [
        ("conveyor_jobs_finished_total", {"pipeline": "document", "state": "SUCCEEDED"}),
        ("conveyor_jobs_finished_total", {"pipeline": "document", "state": "FAILED"}),
        ("conveyor_job_bytes_processed_total", {"pipeline": "document"}),
        ("conveyor_job_retries_total", {"pipeline": "document"}),
        ("conveyor_job_dead_letters_total", {"pipeline": "document"}),
        ("conveyor_job_duration_seconds_count", {"pipeline": "document"}),
        ("conveyor_batches_finished_total", {"status": "PARTIALLY_COMPLETED"}),
    ]
    before = [_sample(name, **labels) for name, labels in counted]
    names = ("ok", "bad", "flaky", "broken")
    batch, jobs = ledger.create_batch(client_id, 1, [NewJob("document", name, "b" * 64, 10) for name in names])
    _run(broker, work, [job.id for job in jobs])
    _run(broker, work, [jobs[0].id])  # a redelivery of an ended job: skipped, counted nowhere
    grown = [_sample(name, **labels) - earlier for (name, labels), earlier in zip(counted, before)]

    assert ledger.get_batch(batch.id, client_id).status == BatchStatus.PARTIALLY_COMPLETED
    # 2 succeeded (ok, flaky) of 10 bytes each, 2 failed (bad, broken); flaky and broken
    # were retried once; only broken was dead-lettered (bad input is the client's
    # error, not an operator's); 6 messages ran.
    assert grown == [2, 2, 20, 2, 1, 6, 1]
