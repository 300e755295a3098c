"""Stored schedules, identically on SQLite and PostgreSQL; cron specs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from conveyor.ledger import Ledger
from conveyor.ledger.database import write_transaction
from conveyor.ledger.scheduling import InvalidSchedule, ScheduleLedger, next_run_after
from conveyor.ledger.schema import schedules

MOMENT = datetime(2026, 3, 4, 10, 17, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("@hourly", datetime(2026, 3, 4, 11, 0, tzinfo=UTC)),
        ("@daily", datetime(2026, 3, 5, 0, 0, tzinfo=UTC)),
        ("@weekly", datetime(2026, 3, 8, 0, 0, tzinfo=UTC)),
        ("@monthly", datetime(2026, 4, 1, 0, 0, tzinfo=UTC)),
        ("* * * * *", datetime(2026, 3, 4, 10, 18, tzinfo=UTC)),
        ("30 6 * * 1-5", datetime(2026, 3, 5, 6, 30, tzinfo=UTC)),
        (" @DAILY ", datetime(2026, 3, 5, 0, 0, tzinfo=UTC)),
    ],
)
def test_next_run_is_the_next_slot_in_utc(cron: str, expected: datetime) -> None:
    assert next_run_after(cron, MOMENT) == expected


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("@often", "unknown cron alias"),
        ("* * * *", "5 fields"),
        ("0 * * * * *", "5 fields"),
        ("61 * * * *", "cron spec '61 \\* \\* \\* \\*'"),
        ("* * 31 2 *", "cron spec"),
        ("", "5 fields"),
    ],
)
def test_bad_cron_specs_are_refused_with_the_problem_named(cron: str, problem: str) -> None:
    with pytest.raises(InvalidSchedule, match=problem):
        next_run_after(cron, MOMENT)


@pytest.fixture
def scheduling(ledger: Ledger) -> ScheduleLedger:
    return ScheduleLedger(ledger.engine)


@pytest.fixture
def client_id(ledger: Ledger) -> str:
    return ledger.create_client("acme", "standard", ["batches:write"], "x").id


def _make_due(scheduling: ScheduleLedger, schedule_id: str, minutes_ago: int = 1) -> datetime:
    due = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    with write_transaction(scheduling.engine) as connection:
        connection.execute(update(schedules).where(schedules.c.id == schedule_id).values(next_run_at=due))
    return due


def test_schedules_are_stored_listed_and_deleted_per_client(
    ledger: Ledger, scheduling: ScheduleLedger, client_id: str
) -> None:
    other = ledger.create_client("other", "free", [], "x").id
    created = scheduling.create_schedule(client_id, " nightly ", "@daily", "batch", "batch-id")
    assert (created.name, created.enabled, created.last_run_at) == ("nightly", True, None)
    assert created.next_run_at == next_run_after("@daily", created.created_at)
    assert scheduling.get_schedule(created.id, client_id) == created
    assert scheduling.get_schedule(created.id, other) is None
    assert scheduling.list_schedules(client_id) == [created]
    assert scheduling.list_schedules(other) == []
    assert not scheduling.delete_schedule(created.id, other)
    assert scheduling.delete_schedule(created.id, client_id)
    assert scheduling.get_schedule(created.id) is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (("n", "nope", "batch", "b"), "5 fields"),
        (("n", "@daily", "url", "b"), "source_kind"),
        (("", "@daily", "batch", "b"), "name"),
        (("n", "@daily", "batch", ""), "source"),
    ],
)
def test_invalid_schedules_are_refused(scheduling: ScheduleLedger, client_id: str, fields: tuple, problem: str) -> None:
    with pytest.raises(InvalidSchedule, match=problem):
        scheduling.create_schedule(client_id, *fields)
    assert scheduling.list_schedules() == []


def test_due_schedules_are_enabled_ones_past_their_next_run(scheduling: ScheduleLedger, client_id: str) -> None:
    due = scheduling.create_schedule(client_id, "due", "* * * * *", "batch", "b")
    scheduling.create_schedule(client_id, "later", "@monthly", "batch", "b")
    disabled = scheduling.create_schedule(client_id, "off", "* * * * *", "batch", "b")
    _make_due(scheduling, due.id)
    _make_due(scheduling, disabled.id)
    scheduling.disable_schedule(disabled.id)
    assert [s.id for s in scheduling.due_schedules(datetime.now(UTC))] == [due.id]


def test_only_one_claimer_wins_a_run(scheduling: ScheduleLedger, client_id: str) -> None:
    schedule = scheduling.create_schedule(client_id, "s", "* * * * *", "batch", "b")
    slot = _make_due(scheduling, schedule.id)
    (seen,) = scheduling.due_schedules(datetime.now(UTC))
    following = next_run_after(seen.cron, datetime.now(UTC))
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        wins.append(scheduling.claim_run(seen.id, seen.next_run_at, following))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]
    after = scheduling.get_schedule(schedule.id)
    assert after.next_run_at == following and after.last_run_at is not None
    assert seen.next_run_at == slot
    assert scheduling.due_schedules(datetime.now(UTC)) == []
    scheduling.record_run(schedule.id, "batch-1")
    assert scheduling.get_schedule(schedule.id).last_batch_id == "batch-1"


def test_a_disabled_schedule_cannot_be_claimed_and_reenabling_skips_missed_runs(
    scheduling: ScheduleLedger, client_id: str
) -> None:
    schedule = scheduling.create_schedule(client_id, "s", "* * * * *", "batch", "b")
    slot = _make_due(scheduling, schedule.id, minutes_ago=30)
    scheduling.disable_schedule(schedule.id)
    assert not scheduling.claim_run(schedule.id, slot, slot + timedelta(minutes=1))
    scheduling.set_enabled(schedule.id, True)
    assert scheduling.get_schedule(schedule.id).next_run_at > datetime.now(UTC)
