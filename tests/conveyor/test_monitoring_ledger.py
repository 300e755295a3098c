"""The ledger's monitoring figures, identically on SQLite and PostgreSQL: open
work only, whatever the history holds."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from conveyor.ledger import Ledger, NewJob
from conveyor.ledger.database import write_transaction
from conveyor.ledger.monitoring import MonitoringLedger
from conveyor.ledger.schema import WebhookState, batches, jobs


def new_jobs(count: int, pipeline: str = "document") -> list[NewJob]:
    return [NewJob(pipeline, f"f{i}.txt", f"{i:064d}", 1) for i in range(count)]


def test_figures_count_open_work_by_status_queue_and_tier(ledger: Ledger) -> None:
    free = ledger.create_client("free client", "free", ["batches:read"], "x").id
    premium = ledger.create_client("premium client", "premium", ["batches:read"], "x").id
    monitoring = MonitoringLedger(ledger.engine)
    assert monitoring.backlog_figures().open_batches == {}

    # A finished batch (history) counts nowhere; its webhook gave up.
    done, done_jobs = ledger.create_batch(free, 1, new_jobs(3), callback_url="https://example.test/hook")
    for job in done_jobs:
        ledger.start_job(job.id)
        ledger.fail_job(job.id, "bad input")
    with write_transaction(ledger.engine) as connection:
        connection.execute(update(batches).where(batches.c.id == done.id).values(webhook_state=WebhookState.FAILED))

    # Open work: two pending for free (one of them an hour old), one running and one pending CSV job for premium.
    _, free_jobs = ledger.create_batch(free, 1, new_jobs(2))
    with write_transaction(ledger.engine) as connection:
        connection.execute(
            update(jobs).where(jobs.c.id == free_jobs[0].id).values(created_at=free_jobs[0].created_at - timedelta(hours=1))
        )
    _, premium_jobs = ledger.create_batch(premium, 5, new_jobs(2, pipeline="csv_quality"))
    ledger.start_job(premium_jobs[0].id)

    figures = monitoring.backlog_figures()
    assert figures.open_batches == {"PENDING": 1, "PROCESSING": 1}
    assert figures.pending_jobs == {"free": 2, "premium": 1}
    assert set(figures.oldest_pending) == {"document", "csv_quality"}
    document_age = figures.measured_at - figures.oldest_pending["document"]
    assert timedelta(hours=1) <= document_age < timedelta(hours=1, minutes=5)
    assert figures.measured_at - figures.oldest_pending["csv_quality"] < timedelta(minutes=5)
    assert figures.failed_webhooks == 1
