"""Conveyor's own worker metrics, beside Dramatiq's (``dramatiq_messages_total``…).

Worker processes write them in prometheus_client's multiprocess mode to the
instance's directory (``PROMETHEUS_MULTIPROC_DIR``, set by the launcher before
the process starts, see :func:`conveyor.processes.worker_instance_environment`),
and Dramatiq's exposition server serves every process's values on the
instance's port.  A job is counted as finished only by the worker whose
ledger write ended it, so redeliveries never count twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from conveyor.ledger import BatchRecord, BatchStatus, JobRecord, JobState

FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
FINAL_BATCH_STATUSES = (
    BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.PARTIALLY_COMPLETED, BatchStatus.CANCELLED
)
WEBHOOK_OUTCOMES = ("delivered", "failed", "gave_up")

JOBS_FINISHED = Counter(
    "conveyor_jobs_finished", "Jobs ended by this worker's ledger write, by pipeline and final state.", ["pipeline", "state"]
)
JOB_SECONDS = Histogram(
    "conveyor_job_duration_seconds",
    "Time a worker spent on one job message (a job, or one part of a fanned-out job), by pipeline.",
    ["pipeline"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
JOB_BYTES = Counter("conveyor_job_bytes_processed", "Input bytes of jobs that succeeded, by pipeline.", ["pipeline"])
JOB_RETRIES = Counter("conveyor_job_retries", "Job messages that failed and will be retried, by pipeline.", ["pipeline"])
JOB_CANCELLATIONS = Counter(
    "conveyor_job_cancellations", "Running jobs stopped at a checkpoint because their batch was cancelled.", ["pipeline"]
)
JOB_DEAD_LETTERS = Counter(
    "conveyor_job_dead_letters",
    "Job messages dead-lettered after their retries or a time limit (bad input is not counted).",
    ["pipeline"],
)
BATCHES_FINISHED = Counter(
    "conveyor_batches_finished", "Batches whose final status a worker settled, by status.", ["status"]
)
WEBHOOK_DELIVERIES = Counter("conveyor_webhook_deliveries", "Webhook attempts, by outcome.", ["outcome"])
LAST_HEARTBEAT = Gauge(
    "conveyor_worker_last_heartbeat_timestamp_seconds",
    "When a process of this worker instance last recorded its heartbeat.",
    multiprocess_mode="max",
)


def initialise_series(pipelines: Iterable[str]) -> None:
    """Create every series whose labels are known, at 0, so rules see them before any event."""
    for pipeline in pipelines:
        for state in FINISHED_STATES:
            JOBS_FINISHED.labels(pipeline, state)
        for counter in (JOB_BYTES, JOB_RETRIES, JOB_CANCELLATIONS, JOB_DEAD_LETTERS):
            counter.labels(pipeline)
    for status in FINAL_BATCH_STATUSES:
        BATCHES_FINISHED.labels(status)
    for outcome in WEBHOOK_OUTCOMES:
        WEBHOOK_DELIVERIES.labels(outcome)


def record_job_end(job: JobRecord, state: JobState, batch: BatchRecord) -> None:
    """``job`` ended as ``state`` by this worker's write; ``batch`` is its batch after that write."""
    JOBS_FINISHED.labels(job.pipeline, state).inc()
    if state == JobState.SUCCEEDED:
        JOB_BYTES.labels(job.pipeline).inc(job.size_bytes)
    if batch.finished_at is not None:  # a batch ends in the same write as its last job
        BATCHES_FINISHED.labels(batch.status).inc()
