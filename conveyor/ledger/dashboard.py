"""The ledger's figures for the operators' dashboard: every client's batches,
tier usage, recent failures and the last hour's throughput and arrivals.

Every query reads through an index and a bounded window (the newest batches,
open jobs, jobs started within the hour, batches created within the hour), so
a refresh costs the same whatever the size of the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from conveyor.ledger.access import now
from conveyor.ledger.database import read_transaction
from conveyor.ledger.schema import BatchStatus, JobState, batches, clients, jobs

FINISHED_JOB_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class BatchRow:
    id: str
    client_name: str
    tier: str
    status: str
    total: int
    succeeded: int
    failed: int
    cancelled: int
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Failure:
    job_id: str
    batch_id: str
    filename: str
    error: str | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Minute:
    start: datetime
    finished: int  # jobs that ended in this minute
    arrived: int  # jobs of batches created in this minute


class DashboardLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def batches(self, status: BatchStatus | None, limit: int) -> list[BatchRow]:
        """Every client's batches, newest first."""
        query = (
            select(
                batches.c.id, clients.c.name, clients.c.tier, batches.c.status, batches.c.total_jobs, batches.c.succeeded_jobs,
                batches.c.failed_jobs, batches.c.cancelled_jobs, batches.c.created_at, batches.c.finished_at,
            )
            .select_from(batches.join(clients))
            .order_by(batches.c.created_at.desc(), batches.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(batches.c.status == status)
        with read_transaction(self.engine) as connection:
            return [BatchRow(*row) for row in connection.execute(query)]

    def tier_usage(self) -> dict[str, dict[str, int]]:
        """Per tier: jobs waiting and running now, jobs ended within the hour."""
        since = now() - timedelta(hours=1)
        by_tier = jobs.join(batches, jobs.c.batch_id == batches.c.id).join(clients)
        usage: dict[str, dict[str, int]] = {}
        with read_transaction(self.engine) as connection:
            open_rows = connection.execute(
                select(clients.c.tier, jobs.c.state, func.count())
                .select_from(by_tier)
                .where(jobs.c.state.in_((JobState.PENDING, JobState.RUNNING)))
                .group_by(clients.c.tier, jobs.c.state)
            ).all()
            ended_rows = connection.execute(
                select(clients.c.tier, func.count())
                .select_from(by_tier)
                .where(jobs.c.state.in_(FINISHED_JOB_STATES), jobs.c.started_at >= since)
                .group_by(clients.c.tier)
            ).all()
        for tier, state, count in open_rows:
            usage.setdefault(tier, {"pending": 0, "running": 0, "ended_last_hour": 0})[state.lower()] = count
        for tier, count in ended_rows:
            usage.setdefault(tier, {"pending": 0, "running": 0, "ended_last_hour": 0})["ended_last_hour"] = count
        return usage

    def recent_failures(self, limit: int = 10) -> list[Failure]:
        query = (
            select(jobs.c.id, jobs.c.batch_id, jobs.c.filename, jobs.c.error, jobs.c.finished_at)
            .where(jobs.c.state == JobState.FAILED)
            .order_by(jobs.c.started_at.desc())
            .limit(limit)
        )
        with read_transaction(self.engine) as connection:
            return [Failure(*row) for row in connection.execute(query)]

    def last_hour(self) -> list[Minute]:
        """Sixty minutes, oldest first: jobs ended and jobs arrived per minute."""
        end = now().replace(second=0, microsecond=0) + timedelta(minutes=1)
        start = end - timedelta(hours=1)
        with read_transaction(self.engine) as connection:
            ended = connection.execute(
                select(jobs.c.finished_at).where(jobs.c.state.in_(FINISHED_JOB_STATES), jobs.c.started_at >= start)
            ).scalars().all()
            arrived = connection.execute(
                select(batches.c.created_at, batches.c.total_jobs).where(batches.c.created_at >= start)
            ).all()
        finished_per_minute = [0] * 60
        arrived_per_minute = [0] * 60
        for moment in ended:
            if moment is not None and moment >= start:
                finished_per_minute[min(59, int((moment - start).total_seconds() // 60))] += 1
        for moment, total in arrived:
            arrived_per_minute[min(59, int((moment - start).total_seconds() // 60))] += total
        return [
            Minute(start + timedelta(minutes=index), finished_per_minute[index], arrived_per_minute[index])
            for index in range(60)
        ]

    def pipeline_rates(self, window: timedelta) -> tuple[dict[str, int], dict[str, int]]:
        """Per pipeline: jobs arrived, and jobs ended, within ``window`` (both through indexes)."""
        since = now() - window
        with read_transaction(self.engine) as connection:
            arrived = connection.execute(
                select(jobs.c.pipeline, func.count())
                .select_from(batches.join(jobs, jobs.c.batch_id == batches.c.id))
                .where(batches.c.created_at >= since)
                .group_by(jobs.c.pipeline)
            ).all()
            ended = connection.execute(
                select(jobs.c.pipeline, func.count())
                .where(jobs.c.state.in_(FINISHED_JOB_STATES), jobs.c.started_at >= since, jobs.c.finished_at >= since)
                .group_by(jobs.c.pipeline)
            ).all()
        return dict(arrived), dict(ended)
