"""Two periodiq schedulers started at once against one real worker: every
periodic message arrives twice, and each due schedule run still makes exactly
one batch, which completes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.schema import periodic_runs, schedules
from conveyor.processes import ManagedProcess, scheduler_command, start_process
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from process_waits import wait_for



def _early_in_a_minute() -> None:
    """periodiq sends every-minute jobs as it starts, stamped with the current
    minute: start both schedulers well inside one minute so both copies share a tick."""
    second = datetime.now(UTC).second
    if second > 40:
        time.sleep(61 - second)


def test_two_schedulers_run_a_due_schedule_once(
    gateway, start_worker, service_environment: dict[str, str], service_settings: Settings, tmp_path: Path, make_client
) -> None:
    engine = create_ledger_engine(service_settings.database_url)
    ledger = Ledger(engine)
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    operator = register_client(ledger, tiers, "operator", "enterprise", ["admin", "batches:read"])
    admin_token = gateway.token(operator)
    token = gateway.token(make_client(tier="premium"))
    headers = {"Authorization": f"Bearer {token}"}

    environment = service_environment
    processes: list[ManagedProcess] = [start_worker(queues=["documents", "maintenance"])]
    try:
        template = gateway.upload(token, {"report.txt": b"quarterly numbers " * 50, "notes.md": b"# notes\nsome text"})
        assert gateway.wait_for_batch(token, template["id"])["status"] == "COMPLETED"

        created = httpx.post(
            f"{gateway.url}/api/v1/schedules",
            headers=headers,
            json={"name": "again", "cron": "@daily", "source": template["id"]},
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        with write_transaction(engine) as connection:  # due now, instead of at midnight
            connection.execute(update(schedules).where(schedules.c.id == schedule_id).values(next_run_at=slot))

        _early_in_a_minute()
        for number in (1, 2):
            processes.append(
                start_process(f"scheduler-{number}", scheduler_command(), environment, tmp_path / f"scheduler-{number}.log", tmp_path)
            )

        def other_batches() -> list[dict]:
            found = gateway.get(token, "/api/v1/batches?limit=100")["batches"]
            return [batch for batch in found if batch["id"] != template["id"]]

        wait_for(other_batches, 60, "the scheduled batch", processes)
        # Both schedulers sent run_due_schedules; the second copy found its tick claimed.
        worker_log = processes[0].log_path
        wait_for(
            lambda: "run_due_schedules: tick" in worker_log.read_text(errors="replace"),
            30, "the second copy of run_due_schedules being dropped", processes,
        )
        for scheduler in processes[1:]:
            assert "Scheduling" in scheduler.log_path.read_text(errors="replace") and "run_due_schedules" in scheduler.log_path.read_text(errors="replace")

        (batch,) = other_batches()
        finished = gateway.wait_for_batch(token, batch["id"])
        assert (finished["status"], finished["counts"]["total"]) == ("COMPLETED", 2)
        files = sorted(job["filename"] for job in gateway.jobs(token, batch["id"]))
        assert files == ["notes.md", "report.txt"]
        stored = gateway.get(token, "/api/v1/schedules")["schedules"][0]
        assert stored["last_batch_id"] == batch["id"]
        assert datetime.fromisoformat(stored["next_run_at"]) > datetime.now(UTC)

        with read_transaction(engine) as connection:
            claims = connection.execute(
                select(periodic_runs.c.tick).where(periodic_runs.c.name == "run_due_schedules")
            ).scalars().all()
        assert len(claims) == len(set(claims)) >= 1

        # the worker's heartbeat is listed for operators
        workers = httpx.get(
            f"{gateway.url}/api/v1/admin/workers", headers={"Authorization": f"Bearer {admin_token}"}
        ).json()["workers"]
        assert any(set(worker["queues"]) == {"documents", "maintenance"} for worker in workers), workers

        time.sleep(2)
        assert len(other_batches()) == 1  # nothing more arrived from the second scheduler
    finally:
        for process in reversed(processes):
            process.stop()
        engine.dispose()

    # a stopped worker says goodbye: its heartbeat row is gone
    assert httpx.get(
        f"{gateway.url}/api/v1/admin/workers", headers={"Authorization": f"Bearer {admin_token}"}
    ).json()["workers"] == []
