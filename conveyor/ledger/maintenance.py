"""The ledger side of the periodic jobs: tick claims, retention, stuck jobs and worker heartbeats.

Every write here is conditional, so that the periodic jobs are safe to run
twice and a worker's own writes always win a race with them:

* a tick is claimed by inserting ``(name, tick)`` into ``periodic_runs``; the
  primary key lets exactly one scheduler's message do a tick's work;
* retention deletes a batch only if it is still ended and still expired when
  the deleting transaction runs (a retried batch is open again, so it stays);
* a stuck job is released only if it is still RUNNING since the same moment
  (a worker that finished it, or started it again, changed that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, Row, and_, delete, false, insert, not_, or_, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.ledger.access import now
from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.schema import (
    JobState,
    WebhookState,
    batches,
    clients,
    job_parts,
    jobs,
    periodic_runs,
    schedules,
    webhook_deliveries,
    worker_heartbeats,
)

CLAIM_KEPT_FOR = timedelta(days=1)  # a tick is never claimed again after this long
HEARTBEAT_INTERVAL_SECONDS = 10.0  # how often a worker process writes its row
LIVE_WITHIN_SECONDS = 3 * HEARTBEAT_INTERVAL_SECONDS  # one lost beat is not a dead worker
FORGET_AFTER_SECONDS = 10 * 60  # rows of workers silent this long are pruned
_IN_CHUNK = 500  # values per IN (...) list, well under every backend's parameter limit


@dataclass(frozen=True)
class RetentionDeletion:
    """What one retention pass removed from the ledger."""

    batch_ids: list[str]
    digests: set[str]  # blobs the deleted jobs referred to (inputs and outputs)


@dataclass(frozen=True)
class StuckJob:
    id: str
    batch_id: str
    pipeline: str
    attempts: int
    started_at: datetime
    priority: int  # the batch's RabbitMQ priority, for publishing the job again


@dataclass(frozen=True)
class WorkerRecord:
    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    started_at: datetime
    last_seen_at: datetime
    jobs_in_progress: int


def _worker(row: Row) -> WorkerRecord:
    values = row._asdict()
    values["queues"] = tuple(values["queues"].split())
    return WorkerRecord(**values)


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield list(values[start : start + _IN_CHUNK])


def _expired(retention_days: Mapping[str, int], moment: datetime) -> ColumnElement[bool]:
    """Ended batches past their client's tier retention.

    A batch that is the template of a schedule never expires (the schedule
    would lose its files), nor does a batch of a client whose tier is unknown.
    """
    per_tier = [
        and_(clients.c.tier == tier, batches.c.finished_at < moment - timedelta(days=days))
        for tier, days in retention_days.items()
    ]
    templates = select(schedules.c.source).where(schedules.c.source_kind == "batch")
    return and_(
        batches.c.finished_at.is_not(None),
        or_(false(), *per_tier),
        batches.c.id.not_in(templates),
    )


class MaintenanceLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Periodic ticks

    def claim_tick(self, name: str, tick: str) -> bool:
        """Claim the ``tick`` of periodic job ``name``; False if someone already has.

        Claims older than :data:`CLAIM_KEPT_FOR` are pruned by whoever wins a claim.
        """
        moment = now()
        try:
            with write_transaction(self.engine) as connection:
                connection.execute(insert(periodic_runs).values(name=name, tick=tick, claimed_at=moment))
        except IntegrityError:
            return False
        with write_transaction(self.engine) as connection:
            connection.execute(delete(periodic_runs).where(periodic_runs.c.claimed_at < moment - CLAIM_KEPT_FOR))
        return True

    # Retention

    def delete_expired_batches(
        self, retention_days: Mapping[str, int], moment: datetime, limit: int
    ) -> RetentionDeletion:
        """Delete up to ``limit`` expired batches with their jobs, parts and
        webhook deliveries, in one transaction; returns them and the blobs
        their jobs referred to (for :meth:`unreferenced`).

        The batches are chosen and locked inside the deleting transaction, so
        a batch reopened by a retry meanwhile is not deleted.
        """
        query = (
            select(batches.c.id)
            .join(clients, clients.c.id == batches.c.client_id)
            .where(_expired(retention_days, moment))
            .order_by(batches.c.finished_at)
            .limit(limit)
            .with_for_update(of=batches)
        )
        with write_transaction(self.engine) as connection:
            batch_ids = [row.id for row in connection.execute(query)]
            digests: set[str] = set()
            for chunk in _chunks(batch_ids):
                for row in connection.execute(
                    select(jobs.c.blob_sha256, jobs.c.output_sha256).where(jobs.c.batch_id.in_(chunk))
                ):
                    digests.add(row.blob_sha256)
                    if row.output_sha256:
                        digests.add(row.output_sha256)
                job_ids = select(jobs.c.id).where(jobs.c.batch_id.in_(chunk))
                connection.execute(delete(job_parts).where(job_parts.c.job_id.in_(job_ids)))
                connection.execute(delete(webhook_deliveries).where(webhook_deliveries.c.batch_id.in_(chunk)))
                connection.execute(delete(jobs).where(jobs.c.batch_id.in_(chunk)))
                connection.execute(delete(batches).where(batches.c.id.in_(chunk)))
        return RetentionDeletion(batch_ids=batch_ids, digests=digests)

    def unreferenced(self, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` that no job refers to, as input or as output."""
        wanted = sorted(set(digests))
        referenced: set[str] = set()
        with read_transaction(self.engine) as connection:
            for chunk in _chunks(wanted):
                referenced.update(
                    connection.execute(select(jobs.c.blob_sha256).where(jobs.c.blob_sha256.in_(chunk))).scalars()
                )
                referenced.update(
                    connection.execute(select(jobs.c.output_sha256).where(jobs.c.output_sha256.in_(chunk))).scalars()
                )
        return set(wanted) - referenced

    # Stuck jobs

    def stuck_jobs(self, moment: datetime, max_running: Mapping[str, timedelta], limit: int = 500) -> list[StuckJob]:
        """RUNNING jobs with no sign of life for longer than their pipeline's
        ``max_running`` (jobs of other pipelines are left alone).

        A job that fanned out into parts counts as alive while its parts
        finish: it is stuck only when no part finished within the limit either.
        """
        conditions = []
        for pipeline, limit_for_pipeline in max_running.items():
            cutoff = moment - limit_for_pipeline
            recent_part = (
                select(job_parts.c.job_id)
                .where(job_parts.c.job_id == jobs.c.id, job_parts.c.finished_at >= cutoff)
                .exists()
            )
            conditions.append(and_(jobs.c.pipeline == pipeline, jobs.c.started_at < cutoff, not_(recent_part)))
        query = (
            select(jobs.c.id, jobs.c.batch_id, jobs.c.pipeline, jobs.c.attempts, jobs.c.started_at, batches.c.priority)
            .join(batches, batches.c.id == jobs.c.batch_id)
            .where(jobs.c.state == JobState.RUNNING, or_(false(), *conditions))
            .order_by(jobs.c.started_at)
            .limit(limit)
        )
        with read_transaction(self.engine) as connection:
            return [StuckJob(**row._asdict()) for row in connection.execute(query)]

    def release_stuck_job(self, job_id: str, started_at: datetime, reason: str) -> bool:
        """Put a stuck job back to PENDING with ``reason`` as its error; False
        (and no change) unless it is still RUNNING since ``started_at``."""
        with write_transaction(self.engine) as connection:
            return bool(
                connection.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.state == JobState.RUNNING, jobs.c.started_at == started_at)
                    .values(state=JobState.PENDING, error=reason)
                ).rowcount
            )

    # Webhooks whose message was lost

    def lost_webhooks(self, quiet_since: datetime, limit: int = 500) -> list[str]:
        """Ended batches that still owe their webhook and have had no delivery
        attempt since ``quiet_since`` (nor ended after it): their message was
        lost (a retry chain attempts at least every few minutes)."""
        recent_attempt = (
            select(webhook_deliveries.c.id)
            .where(webhook_deliveries.c.batch_id == batches.c.id, webhook_deliveries.c.attempted_at >= quiet_since)
            .exists()
        )
        query = (
            select(batches.c.id)
            .where(
                batches.c.webhook_state == WebhookState.PENDING,
                batches.c.finished_at < quiet_since,
                not_(recent_attempt),
            )
            .order_by(batches.c.finished_at)
            .limit(limit)
        )
        with read_transaction(self.engine) as connection:
            return [row.id for row in connection.execute(query)]

    # Worker heartbeats

    def record_heartbeat(
        self,
        worker_id: str,
        hostname: str,
        pid: int,
        queues: Sequence[str],
        started_at: datetime,
        jobs_in_progress: int,
    ) -> None:
        """Insert or refresh the worker's row, seen now."""
        values = {
            "hostname": hostname,
            "pid": pid,
            "queues": " ".join(queues),
            "started_at": started_at,
            "last_seen_at": now(),
            "jobs_in_progress": jobs_in_progress,
        }
        with write_transaction(self.engine) as connection:
            updated = connection.execute(
                update(worker_heartbeats).where(worker_heartbeats.c.worker_id == worker_id).values(**values)
            ).rowcount
            if not updated:
                connection.execute(insert(worker_heartbeats).values(worker_id=worker_id, **values))

    def remove_heartbeat(self, worker_id: str) -> None:
        with write_transaction(self.engine) as connection:
            connection.execute(delete(worker_heartbeats).where(worker_heartbeats.c.worker_id == worker_id))

    def live_workers(self, since: datetime) -> list[WorkerRecord]:
        """Workers seen at or after ``since``, by host and pid."""
        query = (
            select(worker_heartbeats)
            .where(worker_heartbeats.c.last_seen_at >= since)
            .order_by(worker_heartbeats.c.hostname, worker_heartbeats.c.pid, worker_heartbeats.c.worker_id)
        )
        with read_transaction(self.engine) as connection:
            return [_worker(row) for row in connection.execute(query)]

    def prune_heartbeats(self, before: datetime) -> int:
        """Forget workers not seen since ``before`` (killed without a goodbye); returns how many."""
        with write_transaction(self.engine) as connection:
            return connection.execute(
                delete(worker_heartbeats).where(worker_heartbeats.c.last_seen_at < before)
            ).rowcount
