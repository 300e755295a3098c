"""The ledger, identically on SQLite and PostgreSQL (see the ``database_url`` fixture)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from conveyor.ledger import BatchStatus, JobState, Ledger, NewJob, create_ledger_engine
from conveyor.ledger.migrate import SchemaOutOfDate, current_revision, head_revision, require_current, upgrade


def _jobs(count: int) -> list[NewJob]:
    return [NewJob(pipeline="document", filename=f"doc-{i}.txt", blob_sha256="a" * 64, size_bytes=10) for i in range(count)]


@pytest.fixture
def client_id(ledger: Ledger) -> str:
    return ledger.create_client(name="acme", tier="standard", scopes=["batches:read"], secret_hash="x").id


def test_schema_comes_from_migrations_only(database_url: str) -> None:
    engine = create_ledger_engine(database_url)
    with pytest.raises(SchemaOutOfDate, match="revision none"):
        require_current(engine)
    assert inspect(engine).get_table_names() == []
    upgrade(engine)
    upgrade(engine)  # idempotent
    require_current(engine)
    assert {"clients", "batches", "jobs"} <= set(inspect(engine).get_table_names())
    assert current_revision(engine) == head_revision() == "0005"
    engine.dispose()


def test_batch_and_jobs_are_recorded_together(ledger: Ledger, client_id: str) -> None:
    batch, jobs = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(3))
    assert batch.status == BatchStatus.PENDING
    assert (batch.total_jobs, batch.pending_jobs, batch.progress_percent) == (3, 3, 0.0)
    stored = ledger.list_jobs(batch.id)
    assert [job.id for job in stored] == [job.id for job in jobs]
    assert [job.filename for job in stored] == ["doc-0.txt", "doc-1.txt", "doc-2.txt"]
    assert all(job.state == JobState.PENDING and job.attempts == 0 for job in stored)


def test_batch_is_visible_only_to_its_client(ledger: Ledger, client_id: str) -> None:
    other = ledger.create_client(name="other", tier="free", scopes=[], secret_hash="x").id
    batch, _ = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(1))
    assert ledger.get_batch(batch.id, client_id) is not None
    assert ledger.get_batch(batch.id, other) is None


def test_redelivered_outcome_counts_once(ledger: Ledger, client_id: str) -> None:
    batch, (first, second) = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(2))
    assert ledger.start_job(first.id) is not None
    assert ledger.succeed_job(first.id, {"words": 3}) is not None
    assert ledger.succeed_job(first.id, {"words": 3}) is None
    assert ledger.fail_job(first.id, "late failure") is None
    assert ledger.start_job(first.id) is None  # a redelivery is not run again
    current = ledger.get_batch(batch.id, client_id)
    assert (current.succeeded_jobs, current.failed_jobs, current.pending_jobs) == (1, 0, 1)
    assert current.status == BatchStatus.PROCESSING
    assert current.progress_percent == 50.0
    job = ledger.list_jobs(batch.id)[0]
    assert (job.state, job.result, job.attempts) == (JobState.SUCCEEDED, {"words": 3}, 1)


def test_retry_returns_job_to_pending_and_counts_attempts(ledger: Ledger, client_id: str) -> None:
    batch, (job,) = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(1))
    ledger.start_job(job.id)
    ledger.release_job(job.id, "ConnectionError: flaky")
    pending = ledger.list_jobs(batch.id)[0]
    assert (pending.state, pending.error, pending.attempts) == (JobState.PENDING, "ConnectionError: flaky", 1)
    assert ledger.start_job(job.id).attempts == 2


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["ok", "ok"], BatchStatus.COMPLETED),
        (["fail", "fail"], BatchStatus.FAILED),
        (["ok", "fail"], BatchStatus.PARTIALLY_COMPLETED),
    ],
)
def test_final_status(ledger: Ledger, client_id: str, outcomes: list[str], expected: BatchStatus) -> None:
    batch, jobs = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(len(outcomes)))
    for job, outcome in zip(jobs, outcomes):
        ledger.start_job(job.id)
        if outcome == "ok":
            ledger.succeed_job(job.id, {})
        else:
            ledger.fail_job(job.id, "bad input")
    final = ledger.get_batch(batch.id, client_id)
    assert final.status == expected
    assert final.finished_at is not None and final.pending_jobs == 0


def test_cancel_skips_pending_jobs_and_settles_when_running_ones_end(ledger: Ledger, client_id: str) -> None:
    batch, (running, waiting) = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(2))
    ledger.start_job(running.id)
    cancelled = ledger.cancel_batch(batch.id, "not queued")
    assert (cancelled.cancelled_jobs, cancelled.status, cancelled.status_reason) == (1, BatchStatus.PROCESSING, "not queued")
    assert ledger.start_job(waiting.id) is None
    ledger.succeed_job(running.id, {})
    final = ledger.get_batch(batch.id, client_id)
    assert (final.status, final.succeeded_jobs, final.cancelled_jobs) == (BatchStatus.CANCELLED, 1, 1)


def test_concurrent_finishers_settle_the_batch_exactly_once(ledger: Ledger, client_id: str) -> None:
    batch, jobs = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(16))
    for job in jobs:
        ledger.start_job(job.id)
    # Every job is finished twice, from competing threads, as redeliveries would.
    work = [job.id for job in jobs] * 2
    errors: list[BaseException] = []

    def finish(job_ids: list[str]) -> None:
        try:
            for job_id in job_ids:
                ledger.succeed_job(job_id, {})
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=finish, args=(work[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = ledger.get_batch(batch.id, client_id)
    assert (final.succeeded_jobs, final.status) == (16, BatchStatus.COMPLETED)


def test_a_retry_that_arrives_after_the_cancel_is_cancelled_not_run(ledger: Ledger, client_id: str) -> None:
    batch, (job,) = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(1))
    ledger.start_job(job.id)
    ledger.cancel_batch(batch.id, "cancelled by the client")
    assert ledger.cancel_requested(batch.id)
    ledger.release_job(job.id, "ConnectionError: flaky")  # the running attempt failed; a retry is queued
    assert ledger.start_job(job.id) is None
    (cancelled,) = ledger.list_jobs(batch.id)
    assert (cancelled.state, cancelled.error) == (JobState.CANCELLED, "batch cancelled before the job started")
    assert ledger.get_batch(batch.id, client_id).status == BatchStatus.CANCELLED


def test_a_fanned_out_job_finishes_once_when_its_last_part_does(ledger: Ledger, client_id: str) -> None:
    batch, (job,) = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(1))
    ledger.start_job(job.id)
    assert ledger.fan_out(job.id, 3, {"kind": "text"}, "c" * 64) == [0, 1, 2]
    assert ledger.running_job(job.id) is not None
    assert ledger.finish_part(job.id, 1, {"chunks": [1]}) is None
    assert ledger.finish_part(job.id, 1, {"chunks": [1]}) is None  # a redelivered part counts once
    assert ledger.fan_out(job.id, 3, {"kind": "text"}, "c" * 64) == [0, 2]  # a rerun re-enqueues the open parts
    assert ledger.finish_part(job.id, 0, {"chunks": [0]}) is None
    assert ledger.finished_parts(job.id) is None
    assert ledger.finish_part(job.id, 2, {"chunks": [2]}) == ({"kind": "text"}, [{"chunks": [0]}, {"chunks": [1]}, {"chunks": [2]}])
    assert ledger.finish_part(job.id, 2, {"chunks": [2]}) is None
    assert ledger.finished_parts(job.id) == ({"kind": "text"}, [{"chunks": [0]}, {"chunks": [1]}, {"chunks": [2]}])
    finished = ledger.succeed_job(job.id, {"kind": "text", "parts": 3})
    assert finished.status == BatchStatus.COMPLETED and finished.succeeded_jobs == 1
    (done,) = ledger.list_jobs(batch.id)
    assert (done.output_sha256, done.parts_total, done.parts_done) == ("c" * 64, 3, 3)


def test_a_cancelled_batch_stops_its_parts(ledger: Ledger, client_id: str) -> None:
    batch, (job,) = ledger.create_batch(client_id, priority=3, new_jobs=_jobs(1))
    ledger.start_job(job.id)
    ledger.fan_out(job.id, 2, {}, None)
    ledger.cancel_batch(batch.id, "cancelled by the client")
    assert ledger.running_job(job.id) is None


def test_only_a_batch_with_a_callback_owes_a_webhook(ledger: Ledger, client_id: str) -> None:
    with_callback, (first,) = ledger.create_batch(client_id, 3, _jobs(1), callback_url="https://example.org/h")
    without, (second,) = ledger.create_batch(client_id, 3, _jobs(1))
    for job in (first, second):
        ledger.start_job(job.id)
    assert ledger.succeed_job(first.id, {}).webhook_state == "PENDING"
    assert ledger.succeed_job(second.id, {}).webhook_state is None
