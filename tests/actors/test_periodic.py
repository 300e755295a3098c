"""The periodic jobs on a real ledger (SQLite and PostgreSQL) and blob store;
messages they publish land on Dramatiq's StubBroker."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select, update

from actors.periodic import (
    WORKER_LOST,
    PeriodicJobs,
    register_periodic_actors,
    run_key,
    tick_of,
)
from actors.registry import ACTORS
from conveyor.blobs import BlobStore
from conveyor.ledger import BatchStatus, JobState, Ledger, NewJob
from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.scheduling import ScheduleLedger
from conveyor.ledger.schema import batches, jobs, periodic_runs, schedules
from conveyor.pipelines import queue_names
from conveyor.tiers import DEFAULT_TIERS_FILE, Tiers

NOW = datetime.now(UTC)


@pytest.fixture
def broker() -> StubBroker:
    broker = StubBroker()
    for queue in queue_names():
        broker.declare_queue(queue)
    return broker


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
def periodic(ledger: Ledger, blobs: BlobStore, broker: StubBroker) -> PeriodicJobs:
    return PeriodicJobs(ledger, blobs, Tiers.load(DEFAULT_TIERS_FILE, 10), broker)


@pytest.fixture
def client_id(ledger: Ledger) -> str:
    return ledger.create_client("acme", "free", ["batches:write"], "x").id  # free keeps batches 1 day


def _age(blobs: BlobStore, digest: str, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(blobs.path(digest), (old, old))


def _finished(ledger: Ledger, client_id: str, digests: list[str], days_ago: float, output: str | None = None) -> str:
    batch, created = ledger.create_batch(client_id, 1, [NewJob("document", f"f{i}", d, 1) for i, d in enumerate(digests)])
    for job in created:
        ledger.start_job(job.id)
        ledger.succeed_job(job.id, {}, output)
    with write_transaction(ledger.engine) as connection:
        connection.execute(
            update(batches).where(batches.c.id == batch.id).values(finished_at=NOW - timedelta(days=days_ago))
        )
    return batch.id


def _queued(broker: StubBroker, queue: str) -> list[dramatiq.Message]:
    return [dramatiq.Message.decode(data) for data in broker.queues[queue].queue]


# apply_retention


def test_retention_deletes_expired_batches_and_only_their_unshared_idle_blobs(
    ledger: Ledger, blobs: BlobStore, periodic: PeriodicJobs, client_id: str
) -> None:
    own, shared, output, recent = (blobs.put(content) for content in (b"own", b"shared", b"output", b"recent"))
    for digest in (own, shared, output):
        _age(blobs, digest, 2 * 3600)
    expired = _finished(ledger, client_id, [own, shared, recent], days_ago=3, output=output)
    live, _ = ledger.create_batch(client_id, 1, [NewJob("document", "live", shared, 1)])  # still open
    kept = _finished(ledger, client_id, [own], days_ago=0.2)  # within the tier's day
    report = periodic.apply_retention(datetime.now(UTC))

    assert (report.batches, report.blobs_deleted, report.blobs_kept_recent) == (1, 1, 1)
    assert ledger.find_batch(expired) is None
    assert ledger.find_batch(live.id) is not None and ledger.find_batch(kept) is not None
    assert not blobs.exists(output)  # only the expired batch referred to it, and it was idle
    assert blobs.exists(shared)  # a live job still refers to it
    assert blobs.exists(own)  # the kept batch still refers to it
    assert blobs.exists(recent)  # unreferenced now, but written within the grace period

    assert periodic.apply_retention(datetime.now(UTC)).batches == 0  # nothing left to do


def test_retention_works_through_more_batches_than_one_pass(
    ledger: Ledger, periodic: PeriodicJobs, client_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actors.periodic.RETENTION_BATCHES_PER_PASS", 2)
    for _ in range(5):
        _finished(ledger, client_id, ["a" * 64], days_ago=2)
    assert periodic.apply_retention(datetime.now(UTC)).batches == 5


# resolve_stuck_jobs


def _stuck(ledger: Ledger, client_id: str, attempts: int, callback_url: str | None = None) -> tuple[str, str]:
    batch, (job,) = ledger.create_batch(client_id, 7, [NewJob("document", "x", "a" * 64, 1)], callback_url=callback_url)
    ledger.start_job(job.id)
    limit = timedelta(seconds=ACTORS["document"].hard_time_limit_seconds)
    with write_transaction(ledger.engine) as connection:
        connection.execute(
            update(jobs)
            .where(jobs.c.id == job.id)
            .values(attempts=attempts, started_at=NOW - limit - timedelta(minutes=6))
        )
    return batch.id, job.id


def test_a_stuck_job_with_attempts_left_is_queued_again_at_its_batch_priority(
    ledger: Ledger, periodic: PeriodicJobs, broker: StubBroker, client_id: str
) -> None:
    batch_id, job_id = _stuck(ledger, client_id, attempts=1)
    _, fresh = ledger.create_batch(client_id, 7, [NewJob("document", "y", "a" * 64, 1)])
    ledger.start_job(fresh[0].id)  # running, but well within its limit

    report = periodic.resolve_stuck_jobs(datetime.now(UTC))

    assert (report.requeued, report.failed) == ([job_id], [])
    (message,) = _queued(broker, "documents")
    assert (message.actor_name, message.kwargs, message.options["broker_priority"]) == (
        "process_document", {"job_id": job_id}, 7
    )
    (job,) = ledger.list_jobs(batch_id)
    assert (job.state, job.error) == (JobState.PENDING, WORKER_LOST)
    assert ledger.start_job(job_id).attempts == 2  # the re-published message runs it again
    assert periodic.resolve_stuck_jobs(datetime.now(UTC)).requeued == []


def test_a_stuck_job_without_attempts_left_fails_and_ends_its_batch(
    ledger: Ledger, periodic: PeriodicJobs, broker: StubBroker, client_id: str
) -> None:
    batch_id, job_id = _stuck(ledger, client_id, attempts=ACTORS["document"].max_attempts, callback_url="https://x.test/")

    report = periodic.resolve_stuck_jobs(datetime.now(UTC))

    assert (report.requeued, report.failed) == ([], [job_id])
    (job,) = ledger.list_jobs(batch_id)
    assert (job.state, job.error) == (JobState.FAILED, WORKER_LOST)
    assert ledger.find_batch(batch_id).status == BatchStatus.FAILED
    assert _queued(broker, "documents") == []
    (webhook,) = _queued(broker, "maintenance")
    assert (webhook.actor_name, webhook.kwargs) == ("deliver_webhook", {"batch_id": batch_id})


# run_due_schedules


def _template(ledger: Ledger, blobs: BlobStore, client_id: str) -> str:
    digests = [blobs.put(b"alpha"), blobs.put(b"beta")]
    batch, created = ledger.create_batch(
        client_id, 1,
        [NewJob("document", "a.txt", digests[0], 5), NewJob("csv_quality", "b.csv", digests[1], 4)],
        pipeline_options={"thresholds": {"x": 1}},
    )
    for job in created:
        ledger.start_job(job.id)
        ledger.succeed_job(job.id, {})
    return batch.id


def _due(ledger: Ledger, schedule_id: str) -> datetime:
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    with write_transaction(ledger.engine) as connection:
        connection.execute(update(schedules).where(schedules.c.id == schedule_id).values(next_run_at=slot))
    return slot


def test_a_due_batch_schedule_reruns_its_template_once(
    ledger: Ledger, blobs: BlobStore, periodic: PeriodicJobs, broker: StubBroker, client_id: str
) -> None:
    template = _template(ledger, blobs, client_id)
    schedule = ScheduleLedger(ledger.engine).create_schedule(client_id, "again", "* * * * *", "batch", template)
    slot = _due(ledger, schedule.id)

    (batch_id,) = periodic.run_due_schedules(datetime.now(UTC))
    assert periodic.run_due_schedules(datetime.now(UTC)) == []  # the run is taken

    batch = ledger.find_batch(batch_id)
    assert (batch.client_id, batch.priority, batch.pipeline_options) == (client_id, 1, {"thresholds": {"x": 1}})
    assert batch.published_at is not None and batch.idempotency_key == run_key(schedule, slot)
    copies = ledger.list_jobs(batch_id)
    originals = ledger.list_jobs(template)
    assert [(j.pipeline, j.filename, j.blob_sha256, j.size_bytes) for j in copies] == [
        (j.pipeline, j.filename, j.blob_sha256, j.size_bytes) for j in originals
    ]
    published = _queued(broker, "documents") + _queued(broker, "analysis")
    assert sorted(m.kwargs["job_id"] for m in published) == sorted(j.id for j in copies)
    assert {m.options["broker_priority"] for m in published} == {1}
    stored = ScheduleLedger(ledger.engine).get_schedule(schedule.id)
    assert stored.last_batch_id == batch_id and stored.next_run_at > datetime.now(UTC)


def test_a_schedule_whose_template_is_gone_is_disabled(
    ledger: Ledger, periodic: PeriodicJobs, client_id: str
) -> None:
    schedule = ScheduleLedger(ledger.engine).create_schedule(client_id, "s", "@daily", "batch", "no-such-batch")
    _due(ledger, schedule.id)
    assert periodic.run_due_schedules(datetime.now(UTC)) == []
    assert not ScheduleLedger(ledger.engine).get_schedule(schedule.id).enabled


def test_a_directory_schedule_without_a_submitter_is_skipped(
    ledger: Ledger, periodic: PeriodicJobs, client_id: str, tmp_path: Path
) -> None:
    schedule = ScheduleLedger(ledger.engine).create_schedule(client_id, "dir", "@daily", "directory", str(tmp_path))
    _due(ledger, schedule.id)
    assert periodic.run_due_schedules(datetime.now(UTC)) == []
    assert ScheduleLedger(ledger.engine).get_schedule(schedule.id).next_run_at > datetime.now(UTC)


def test_a_directory_schedule_submits_through_its_submitter(
    ledger: Ledger, periodic: PeriodicJobs, client_id: str, tmp_path: Path
) -> None:
    calls = []
    periodic.submit_directory = lambda schedule, key: calls.append((schedule.source, key)) or "batch-from-api"
    schedule = ScheduleLedger(ledger.engine).create_schedule(client_id, "dir", "@daily", "directory", str(tmp_path))
    slot = _due(ledger, schedule.id)
    assert periodic.run_due_schedules(datetime.now(UTC)) == ["batch-from-api"]
    assert calls == [(str(tmp_path), run_key(schedule, slot))]


# The actors: one tick, one run, however many schedulers sent it


def test_tick_is_the_scheduled_minute_in_utc() -> None:
    message = dramatiq.Message("maintenance", "x", (), {}, {"scheduled_at": "2026-03-04 12:17:00+01:00"})
    assert tick_of(message) == "2026-03-04T11:17+00:00"
    manual = dramatiq.Message("maintenance", "x", (), {}, {}, message_timestamp=1_700_000_123_456)
    assert tick_of(manual) == "2023-11-14T22:15+00:00"


def test_two_schedulers_copies_of_a_tick_do_the_work_once(
    ledger: Ledger, blobs: BlobStore, periodic: PeriodicJobs, broker: StubBroker, client_id: str
) -> None:
    template = _template(ledger, blobs, client_id)
    schedule = ScheduleLedger(ledger.engine).create_schedule(client_id, "again", "* * * * *", "batch", template)
    _due(ledger, schedule.id)
    register_periodic_actors(broker, periodic)
    register_periodic_actors(broker, periodic)  # idempotent
    actor = broker.get_actor("run_due_schedules")
    scheduled_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    for _ in range(2):  # what two periodiq processes send for the same minute
        actor.send_with_options(scheduled_at=scheduled_at)
    worker = dramatiq.Worker(broker, queues={"maintenance"}, worker_timeout=100)
    worker.start()
    try:
        broker.join("maintenance", fail_fast=True)
    finally:
        worker.stop()
    with read_transaction(ledger.engine) as connection:
        claims = connection.execute(select(periodic_runs.c.name, periodic_runs.c.tick)).all()
        created = connection.execute(select(batches.c.id).where(batches.c.id != template)).scalars().all()
    assert claims == [("run_due_schedules", tick_of(actor.message_with_options(scheduled_at=scheduled_at)))]
    assert len(created) == 1


def test_a_lost_webhook_is_queued_again(
    ledger: Ledger, periodic: PeriodicJobs, broker: StubBroker, client_id: str
) -> None:
    batch, (job,) = ledger.create_batch(client_id, 1, [NewJob("document", "x", "a" * 64, 1)], callback_url="https://x.test/")
    ledger.start_job(job.id)
    ledger.succeed_job(job.id, {})
    assert periodic.resend_lost_webhooks(datetime.now(UTC)) == []  # just ended: its message may be on its way
    assert periodic.resend_lost_webhooks(datetime.now(UTC) + timedelta(hours=1)) == [batch.id]
    (message,) = _queued(broker, "maintenance")
    assert (message.actor_name, message.kwargs) == ("deliver_webhook", {"batch_id": batch.id})
