"""The scheduler's periodic jobs, run as Dramatiq actors on the ``maintenance`` queue.

One scheduler process (``python -m actors.scheduler``, periodiq underneath)
sends each job's message at its cron times; workers consuming ``maintenance``
run them.  The jobs:

``apply_retention`` (hourly)
    deletes batches ended longer ago than their client's tier keeps them
    (``retention_days``), with their jobs and results, then the blobs that no
    remaining job refers to and that nobody wrote within
    :data:`BLOB_GRACE` (see :mod:`conveyor.blobs` for why).
``resolve_stuck_jobs`` (every minute)
    a job RUNNING for longer than its pipeline's hard time limit plus
    :data:`STUCK_MARGIN` lost its worker: it is queued again, or FAILED with
    :data:`WORKER_LOST` once its attempts are spent.
``prune_heartbeats`` (every minute)
    forgets workers whose heartbeat stopped without a goodbye.
``run_due_schedules`` (every minute)
    starts the runs of stored schedules that are due.
``resend_lost_webhooks`` (every 5 minutes)
    queues again the webhook of an ended batch that still owes it and saw no
    delivery attempt for :data:`WEBHOOK_QUIET` (its message was lost, or was
    never queued); the attempts stay capped by the webhook actor's total.

**Double sends.**  periodiq sends one copy per running scheduler.  Each job
first claims its tick (its name and the scheduled minute) in the ledger's
``periodic_runs``; only the first copy of a tick does any work.  Schedule runs
are additionally claimed one by one (:meth:`ScheduleLedger.claim_run`) and
create their batch under an idempotency key derived from the run's slot.

**Lost ticks.**  A tick is claimed before its work; if the worker dies
halfway, the next tick does what is left (every job is a sweep).  For that
reason the actors are not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
from dramatiq.middleware import CurrentMessage
from periodiq import PeriodiqMiddleware, cron

from actors.registry import ACTORS, ActorSpec
from conveyor.blobs import BlobStore
from conveyor.ledger import DuplicateIdempotencyKey, JobState, Ledger, NewJob, create_ledger_engine
from conveyor.ledger.maintenance import FORGET_AFTER_SECONDS, MaintenanceLedger
from conveyor.ledger.scheduling import InvalidSchedule, ScheduleLedger, ScheduleRecord, next_run_after
from conveyor.pipelines import MAINTENANCE_QUEUE, PIPELINES, webhook_message
from conveyor.settings import Settings
from conveyor.submission_client import SubmissionClient
from conveyor.tiers import TierError, Tiers

logger = logging.getLogger(__name__)

BLOB_GRACE = timedelta(hours=1)  # blobs written or re-uploaded this recently are kept
STUCK_MARGIN = timedelta(minutes=5)
WEBHOOK_QUIET = timedelta(minutes=15)  # longer than any pause in a webhook's retry chain
WORKER_LOST = "worker lost: no result within the hard time limit"
RETENTION_BATCHES_PER_PASS = 200  # one transaction each
RETENTION_MAX_PASSES = 50  # per tick; the next hour continues
STALE_MESSAGE_SECONDS = 10 * 60  # periodiq skips a periodic message older than this
PERIODIC_TIME_LIMIT_MS = 10 * 60_000  # below RabbitMQ's 30-minute consumer timeout

# (actor name, cron spec); the names are the ``periodic_runs`` claim names too.
APPLY_RETENTION = ("apply_retention", "@hourly")
RESOLVE_STUCK_JOBS = ("resolve_stuck_jobs", "* * * * *")
PRUNE_HEARTBEATS = ("prune_heartbeats", "* * * * *")
RUN_DUE_SCHEDULES = ("run_due_schedules", "* * * * *")
RESEND_LOST_WEBHOOKS = ("resend_lost_webhooks", "*/5 * * * *")

# (schedule, idempotency key) -> the id of the batch submitted
DirectorySubmitter = Callable[[ScheduleRecord, str], str]


class ScheduleNotRunnable(Exception):
    """A schedule's run could not start (the message says why); the run is skipped."""


@dataclass(frozen=True)
class RetentionReport:
    batches: int
    blobs_deleted: int
    blobs_kept_recent: int  # unreferenced but written within the grace period


@dataclass(frozen=True)
class StuckReport:
    requeued: list[str]
    failed: list[str]


def run_key(schedule: ScheduleRecord, slot: datetime) -> str:
    """The idempotency key of a schedule's run at ``slot``: one batch per run, whoever runs it."""
    return f"schedule-{schedule.id}-{slot.astimezone(UTC).isoformat(timespec='minutes')}"


def tick_of(message: dramatiq.Message | None) -> str:
    """The minute a periodic message stands for, as ISO text: periodiq's
    ``scheduled_at`` when present, else the message's own timestamp."""
    if message is not None and "scheduled_at" in message.options:
        moment = datetime.fromisoformat(str(message.options["scheduled_at"]))
    elif message is not None:
        moment = datetime.fromtimestamp(message.message_timestamp / 1000, UTC)
    else:
        moment = datetime.now(UTC)
    return moment.astimezone(UTC).replace(second=0, microsecond=0).isoformat(timespec="minutes")


def submission_client_submitter(settings: Settings, ledger: Ledger) -> DirectorySubmitter:
    """Directory runs go through the HTTP API (:mod:`conveyor.submission_client`)
    with the same limits as any upload."""
    client = SubmissionClient(settings, ledger)

    def submit(schedule: ScheduleRecord, key: str) -> str:
        directory = Path(schedule.source)
        if not directory.is_dir():
            raise ScheduleNotRunnable(f"{directory} is not a directory")
        files = sorted(path for path in directory.iterdir() if path.is_file())
        if not files:
            raise ScheduleNotRunnable(f"{directory} holds no files")
        return client.submit(schedule.client_id, files, key)

    return submit


class PeriodicJobs:
    """The work of each periodic job, as plain methods taking the present moment."""

    def __init__(
        self,
        ledger: Ledger,
        blobs: BlobStore,
        tiers: Tiers,
        broker: dramatiq.Broker,
        actor_specs: Mapping[str, ActorSpec] = ACTORS,
        submit_directory: DirectorySubmitter | None = None,
    ) -> None:
        self.ledger = ledger
        self.maintenance = MaintenanceLedger(ledger.engine)
        self.schedules = ScheduleLedger(ledger.engine)
        self.blobs = blobs
        self.tiers = tiers
        self.broker = broker
        self.actor_specs = {name: spec for name, spec in actor_specs.items() if name in PIPELINES}
        self.submit_directory = submit_directory

    @classmethod
    def from_settings(cls, settings: Settings, broker: dramatiq.Broker, ledger: Ledger | None = None) -> PeriodicJobs:
        ledger = ledger or Ledger(create_ledger_engine(settings.database_url))
        return cls(
            ledger,
            BlobStore(settings.blob_dir),
            Tiers.load(settings.tiers_file, settings.max_priority),
            broker,
            submit_directory=submission_client_submitter(settings, ledger),
        )

    # apply_retention

    def apply_retention(self, moment: datetime) -> RetentionReport:
        retention_days = {name: self.tiers[name].retention_days for name in self.tiers.names}
        batches = deleted = kept = 0
        for _ in range(RETENTION_MAX_PASSES):
            removed = self.maintenance.delete_expired_batches(retention_days, moment, RETENTION_BATCHES_PER_PASS)
            batches += len(removed.batch_ids)
            idle_since = (moment - BLOB_GRACE).timestamp()
            for digest in sorted(self.maintenance.unreferenced(removed.digests)):
                if self.blobs.delete_if_idle(digest, idle_since):
                    deleted += 1
                elif self.blobs.exists(digest):
                    kept += 1
            if len(removed.batch_ids) < RETENTION_BATCHES_PER_PASS:
                break
        report = RetentionReport(batches=batches, blobs_deleted=deleted, blobs_kept_recent=kept)
        if batches:
            logger.info("retention: %s", report)
        return report

    # resolve_stuck_jobs

    def resolve_stuck_jobs(self, moment: datetime) -> StuckReport:
        limits = {
            name: timedelta(seconds=spec.hard_time_limit_seconds) + STUCK_MARGIN
            for name, spec in self.actor_specs.items()
        }
        requeued, failed = [], []
        for job in self.maintenance.stuck_jobs(moment, limits):
            if not self.maintenance.release_stuck_job(job.id, job.started_at, WORKER_LOST):
                continue  # it finished, or started again, meanwhile
            if job.attempts >= self.actor_specs[job.pipeline].max_attempts:
                batch = self.ledger.fail_job(job.id, WORKER_LOST)
                failed.append(job.id)
                if batch is not None and batch.finished_at is not None and batch.webhook_state is not None:
                    self.broker.enqueue(webhook_message(batch.id))
            else:
                self.broker.enqueue(PIPELINES[job.pipeline].job_message(job.id, job.priority))
                requeued.append(job.id)
        if requeued or failed:
            logger.warning("stuck jobs: queued again %s, failed %s", requeued, failed)
        return StuckReport(requeued=requeued, failed=failed)

    # prune_heartbeats

    def prune_heartbeats(self, moment: datetime) -> int:
        return self.maintenance.prune_heartbeats(moment - timedelta(seconds=FORGET_AFTER_SECONDS))

    # resend_lost_webhooks

    def resend_lost_webhooks(self, moment: datetime) -> list[str]:
        lost = self.maintenance.lost_webhooks(moment - WEBHOOK_QUIET)
        for batch_id in lost:
            self.broker.enqueue(webhook_message(batch_id))
        if lost:
            logger.warning("webhooks queued again (message lost): %s", lost)
        return lost

    # run_due_schedules

    def run_due_schedules(self, moment: datetime) -> list[str]:
        """Start every due schedule's run that this call wins; returns the batches created."""
        created = []
        for schedule in self.schedules.due_schedules(moment):
            try:
                following = next_run_after(schedule.cron, moment)
            except InvalidSchedule as error:
                logger.error("schedule %s disabled: %s", schedule.id, error)
                self.schedules.disable_schedule(schedule.id)
                continue
            if not self.schedules.claim_run(schedule.id, schedule.next_run_at, following):
                continue  # another scheduler's message won this run
            try:
                batch_id = self.run_schedule(schedule, schedule.next_run_at)
            except ScheduleNotRunnable as error:
                logger.error("schedule %s (%s): run of %s skipped: %s", schedule.id, schedule.name, schedule.next_run_at, error)
                continue
            except Exception:
                logger.exception("schedule %s (%s): run of %s failed", schedule.id, schedule.name, schedule.next_run_at)
                continue
            self.schedules.record_run(schedule.id, batch_id)
            created.append(batch_id)
            logger.info("schedule %s (%s): run of %s is batch %s", schedule.id, schedule.name, schedule.next_run_at, batch_id)
        return created

    def run_schedule(self, schedule: ScheduleRecord, slot: datetime) -> str:
        """Start the run of ``schedule`` due at ``slot``; returns its batch id."""
        key = run_key(schedule, slot)
        if schedule.source_kind == "directory":
            if self.submit_directory is None:
                raise ScheduleNotRunnable("this scheduler was built without a directory submitter")
            return self.submit_directory(schedule, key)
        return self._rerun_batch(schedule, key)

    def _rerun_batch(self, schedule: ScheduleRecord, key: str) -> str:
        """A new batch with the template batch's files and options, published at the client's tier priority."""
        client = self.ledger.get_client(schedule.client_id)
        if client is None or client.disabled_at is not None:
            raise ScheduleNotRunnable(f"client {schedule.client_id} is unknown or disabled")
        try:
            tier = self.tiers[client.tier]
        except TierError as error:
            raise ScheduleNotRunnable(str(error)) from None
        template = self.ledger.get_batch(schedule.source, client.id)
        if template is None:
            self.schedules.disable_schedule(schedule.id)
            raise ScheduleNotRunnable(f"template batch {schedule.source} is gone; schedule disabled")
        files = self.ledger.list_jobs(template.id)
        missing = sorted({job.blob_sha256 for job in files if not self.blobs.exists(job.blob_sha256)})
        if not files or missing:
            raise ScheduleNotRunnable(f"template batch {template.id} has no files or lost blobs {missing}")
        open_jobs = self.ledger.open_jobs(client.id)
        if open_jobs + len(files) > tier.max_pending_jobs:
            raise ScheduleNotRunnable(
                f"client has {open_jobs} open jobs; {len(files)} more exceed the {tier.name} tier's {tier.max_pending_jobs}"
            )
        new_jobs = [NewJob(job.pipeline, job.filename, job.blob_sha256, job.size_bytes) for job in files]
        try:
            batch, jobs = self.ledger.create_batch(
                client.id,
                tier.priority,
                new_jobs,
                idempotency_key=key,
                pipeline_options=template.pipeline_options,
                callback_url=template.callback_url,
            )
        except DuplicateIdempotencyKey:  # this run's batch exists: finish publishing it
            batch = self.ledger.find_by_idempotency_key(client.id, key)
            assert batch is not None
            if batch.published_at is not None:
                return batch.id
            jobs = [job for job in self.ledger.list_jobs(batch.id) if job.state == JobState.PENDING]
        try:
            for job in jobs:
                self.broker.enqueue(PIPELINES[job.pipeline].job_message(job.id, batch.priority))
        except Exception:
            self.ledger.cancel_batch(batch.id, "not queued: the job broker was unavailable when the schedule ran")
            raise
        self.ledger.mark_published(batch.id)
        return batch.id


def _claiming(name: str, work: Callable[[datetime], object], maintenance: MaintenanceLedger) -> Callable[[], None]:
    """The actor function: claim the message's tick, then do ``work`` unless another copy has."""

    def run() -> None:
        tick = tick_of(CurrentMessage.get_current_message())
        if not maintenance.claim_tick(name, tick):
            logger.info("%s: tick %s already claimed (a second scheduler sent it too); nothing done", name, tick)
            return
        work(datetime.now(UTC))

    run.__name__ = run.__qualname__ = name
    run.__module__ = __name__
    return run


def register_periodic_actors(broker: dramatiq.Broker, jobs: PeriodicJobs) -> None:
    """Declare the periodic actors on ``broker`` (and the middleware they need).

    Declaring them does not make a worker consume ``maintenance``: workers
    started with ``--queues`` without it never run them.  Calling this again
    on the same broker changes nothing.
    """
    if RUN_DUE_SCHEDULES[0] in broker.actors:
        return
    if not any(isinstance(middleware, PeriodiqMiddleware) for middleware in broker.middleware):
        broker.add_middleware(PeriodiqMiddleware(skip_delay=STALE_MESSAGE_SECONDS))
    if not any(isinstance(middleware, CurrentMessage) for middleware in broker.middleware):
        broker.add_middleware(CurrentMessage())
    for (name, spec), work in (
        (APPLY_RETENTION, jobs.apply_retention),
        (RESOLVE_STUCK_JOBS, jobs.resolve_stuck_jobs),
        (PRUNE_HEARTBEATS, jobs.prune_heartbeats),
        (RUN_DUE_SCHEDULES, jobs.run_due_schedules),
        (RESEND_LOST_WEBHOOKS, jobs.resend_lost_webhooks),
    ):
        dramatiq.actor(
            _claiming(name, work, jobs.maintenance),
            broker=broker,
            actor_name=name,
            queue_name=MAINTENANCE_QUEUE,
            periodic=cron(spec),
            max_retries=0,
            time_limit=PERIODIC_TIME_LIMIT_MS,
        )
