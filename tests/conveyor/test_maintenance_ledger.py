"""The periodic jobs' ledger, identically on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from conveyor.ledger import JobState, Ledger, NewJob
from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.maintenance import CLAIM_KEPT_FOR, MaintenanceLedger
from conveyor.ledger.scheduling import ScheduleLedger
from conveyor.ledger.schema import batches, job_parts, jobs, periodic_runs, webhook_deliveries
from conveyor.ledger.webhooks import WebhookLedger

RETENTION = {"free": 1, "standard": 7}
NOW = datetime.now(UTC)


def digest(name: str) -> str:
    return name * 64 if len(name) == 1 else name


def finished_batch(ledger: Ledger, client_id: str, blobs: list[str], days_ago: float, output: str | None = None) -> str:
    """A batch whose jobs all succeeded, ended ``days_ago`` days ago."""
    batch, created = ledger.create_batch(
        client_id, 3, [NewJob("document", f"f{i}.txt", digest(blob), 1) for i, blob in enumerate(blobs)],
        callback_url="https://example.test/hook",
    )
    for job in created:
        ledger.start_job(job.id)
        ledger.succeed_job(job.id, {"ok": True}, digest(output) if output else None)
    with write_transaction(ledger.engine) as connection:
        connection.execute(
            update(batches).where(batches.c.id == batch.id).values(finished_at=NOW - timedelta(days=days_ago))
        )
    return batch.id


@pytest.fixture
def maintenance(ledger: Ledger) -> MaintenanceLedger:
    return MaintenanceLedger(ledger.engine)


@pytest.fixture
def clients(ledger: Ledger) -> dict[str, str]:
    return {tier: ledger.create_client(tier, tier, ["batches:read"], "x").id for tier in ("free", "standard", "odd")}


def test_a_tick_is_claimed_once(maintenance: MaintenanceLedger) -> None:
    assert maintenance.claim_tick("apply_retention", "2026-01-01T10:00+00:00")
    assert not maintenance.claim_tick("apply_retention", "2026-01-01T10:00+00:00")
    assert maintenance.claim_tick("apply_retention", "2026-01-01T11:00+00:00")
    assert maintenance.claim_tick("prune_heartbeats", "2026-01-01T10:00+00:00")


def test_old_claims_are_pruned(maintenance: MaintenanceLedger) -> None:
    maintenance.claim_tick("old", "t")
    with write_transaction(maintenance.engine) as connection:
        connection.execute(update(periodic_runs).values(claimed_at=NOW - CLAIM_KEPT_FOR - timedelta(minutes=1)))
    maintenance.claim_tick("new", "t")
    with read_transaction(maintenance.engine) as connection:
        assert connection.execute(select(periodic_runs.c.name)).scalars().all() == ["new"]


def test_batches_expire_by_their_client_tier(ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]) -> None:
    free_old = finished_batch(ledger, clients["free"], ["a"], days_ago=2)
    finished_batch(ledger, clients["free"], ["b"], days_ago=0.5)  # within a day
    standard_old = finished_batch(ledger, clients["standard"], ["c"], days_ago=8)
    finished_batch(ledger, clients["standard"], ["d"], days_ago=2)  # within a week
    finished_batch(ledger, clients["odd"], ["e"], days_ago=400)  # unknown tier: kept
    ledger.create_batch(clients["free"], 1, [NewJob("document", "open.txt", digest("f"), 1)])  # open: never expires
    assert set(maintenance.delete_expired_batches(RETENTION, NOW, 100).batch_ids) == {free_old, standard_old}


def test_a_schedule_template_never_expires(ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]) -> None:
    template = finished_batch(ledger, clients["free"], ["a"], days_ago=30)
    ScheduleLedger(ledger.engine).create_schedule(clients["free"], "nightly", "@daily", "batch", template)
    assert maintenance.delete_expired_batches(RETENTION, NOW, 100).batch_ids == []


def test_deleting_expired_batches_removes_their_rows_and_names_their_blobs(
    ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]
) -> None:
    old = finished_batch(ledger, clients["free"], ["a", "b"], days_ago=3, output="c")
    kept = finished_batch(ledger, clients["free"], ["b"], days_ago=0)
    (first, _) = ledger.list_jobs(old)
    with write_transaction(ledger.engine) as connection:
        connection.execute(job_parts.insert().values(job_id=first.id, part=0, state=JobState.SUCCEEDED))
    WebhookLedger(ledger.engine).record_attempt(old, 500, None, False)

    removed = maintenance.delete_expired_batches(RETENTION, NOW, 100)

    assert removed.batch_ids == [old]
    assert removed.digests == {digest("a"), digest("b"), digest("c")}
    assert ledger.find_batch(old) is None and ledger.find_batch(kept) is not None
    with read_transaction(ledger.engine) as connection:
        for table, column in ((jobs, jobs.c.batch_id), (webhook_deliveries, webhook_deliveries.c.batch_id)):
            assert connection.execute(select(func.count()).select_from(table).where(column == old)).scalar() == 0
        assert connection.execute(select(func.count()).select_from(job_parts)).scalar() == 0
    # "b" is still an input of the kept batch
    assert maintenance.unreferenced(removed.digests) == {digest("a"), digest("c")}


def test_a_retried_batch_is_open_again_and_not_deleted(
    ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]
) -> None:
    old = finished_batch(ledger, clients["free"], ["a"], days_ago=3)
    (job,) = ledger.list_jobs(old)
    with write_transaction(ledger.engine) as connection:  # make it a failed batch, then retry it
        connection.execute(update(jobs).where(jobs.c.id == job.id).values(state=JobState.FAILED))
        connection.execute(update(batches).where(batches.c.id == old).values(succeeded_jobs=0, failed_jobs=1))
    ledger.reopen_failed_jobs(old)
    assert maintenance.delete_expired_batches(RETENTION, NOW, 100).batch_ids == []


def test_unreferenced_looks_at_inputs_and_outputs(ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]) -> None:
    finished_batch(ledger, clients["free"], ["a"], days_ago=0, output="b")
    assert maintenance.unreferenced([digest("a"), digest("b"), digest("c")]) == {digest("c")}
    assert maintenance.unreferenced([]) == set()


def _running_since(ledger: Ledger, client_id: str, minutes_ago: float, pipeline: str = "document") -> str:
    _, (job,) = ledger.create_batch(client_id, 6, [NewJob(pipeline, "x.txt", digest("a"), 1)])
    ledger.start_job(job.id)
    with write_transaction(ledger.engine) as connection:
        connection.execute(update(jobs).where(jobs.c.id == job.id).values(started_at=NOW - timedelta(minutes=minutes_ago)))
    return job.id


def test_stuck_jobs_are_running_past_their_pipeline_limit(
    ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]
) -> None:
    limits = {"document": timedelta(minutes=15)}
    stuck = _running_since(ledger, clients["standard"], 20)
    _running_since(ledger, clients["standard"], 10)
    _running_since(ledger, clients["standard"], 60, pipeline="unknown")
    found = maintenance.stuck_jobs(NOW, limits)
    assert [(job.id, job.priority, job.attempts) for job in found] == [(stuck, 6, 1)]


def test_a_fanned_out_job_with_recent_parts_is_not_stuck(
    ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]
) -> None:
    job_id = _running_since(ledger, clients["standard"], 20)
    with write_transaction(ledger.engine) as connection:
        connection.execute(
            job_parts.insert().values(job_id=job_id, part=0, state=JobState.SUCCEEDED, finished_at=NOW - timedelta(minutes=1))
        )
    assert maintenance.stuck_jobs(NOW, {"document": timedelta(minutes=15)}) == []


def test_releasing_a_stuck_job_is_conditional(ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]) -> None:
    job_id = _running_since(ledger, clients["standard"], 20)
    (job,) = maintenance.stuck_jobs(NOW, {"document": timedelta(minutes=15)})
    ledger.succeed_job(job_id, {"late": True})  # the worker was only slow: its result wins
    assert not maintenance.release_stuck_job(job.id, job.started_at, "lost")

    other = _running_since(ledger, clients["standard"], 20)
    (job,) = maintenance.stuck_jobs(NOW, {"document": timedelta(minutes=15)})
    assert maintenance.release_stuck_job(other, job.started_at, "lost")
    assert not maintenance.release_stuck_job(other, job.started_at, "lost")
    released = ledger.list_jobs(job.batch_id)[0]
    assert (released.state, released.error) == (JobState.PENDING, "lost")


def test_heartbeats_are_upserted_listed_and_pruned(maintenance: MaintenanceLedger) -> None:
    started = NOW - timedelta(minutes=5)
    maintenance.record_heartbeat("w1", "host-a", 10, ["documents", "maintenance"], started, 0)
    maintenance.record_heartbeat("w1", "host-a", 10, ["documents", "maintenance"], started, 3)
    maintenance.record_heartbeat("w2", "host-b", 11, ["analysis"], started, 1)
    (first, second) = maintenance.live_workers(NOW - timedelta(seconds=30))
    assert (first.worker_id, first.queues, first.jobs_in_progress, first.started_at) == (
        "w1", ("documents", "maintenance"), 3, started
    )
    assert second.worker_id == "w2"
    maintenance.remove_heartbeat("w2")
    assert [w.worker_id for w in maintenance.live_workers(NOW - timedelta(seconds=30))] == ["w1"]
    assert maintenance.live_workers(datetime.now(UTC) + timedelta(seconds=1)) == []
    assert maintenance.prune_heartbeats(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert maintenance.prune_heartbeats(datetime.now(UTC) + timedelta(seconds=1)) == 0


def test_lost_webhooks_are_owed_and_quiet(ledger: Ledger, maintenance: MaintenanceLedger, clients: dict[str, str]) -> None:
    never_sent = finished_batch(ledger, clients["standard"], ["a"], days_ago=1)
    retrying = finished_batch(ledger, clients["standard"], ["a"], days_ago=1)
    gave_up_quietly = finished_batch(ledger, clients["standard"], ["a"], days_ago=1)
    just_ended = finished_batch(ledger, clients["standard"], ["a"], days_ago=0)
    delivered = finished_batch(ledger, clients["standard"], ["a"], days_ago=1)
    webhooks = WebhookLedger(ledger.engine)
    webhooks.record_attempt(retrying, 503, "HTTP 503", False)  # attempted just now: its chain is alive
    webhooks.record_attempt(gave_up_quietly, 503, "HTTP 503", False)
    with write_transaction(ledger.engine) as connection:
        connection.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.batch_id == gave_up_quietly)
            .values(attempted_at=NOW - timedelta(hours=1))
        )
        connection.execute(
            update(batches).where(batches.c.id == just_ended).values(finished_at=datetime.now(UTC))
        )
    webhooks.record_attempt(delivered, 200, None, True)
    quiet_since = datetime.now(UTC) - timedelta(minutes=15)
    assert set(maintenance.lost_webhooks(quiet_since)) == {never_sent, gave_up_quietly}
