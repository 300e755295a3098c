"""Test-only pipelines with controllable behaviour, loaded into a real worker
beside ``actors.worker`` (``dramatiq actors.worker workloads``) so that fault
tests can hold jobs running for as long as they need.

Each job's filename says what it does: ``sleep-<seconds>-<n>.txt`` sleeps in
small steps with a checkpoint between them; the other actors are named by
their behaviour.
"""

from __future__ import annotations

import time

import dramatiq

from actors.document_analysis import UnsupportedDocument
from actors.job_context import current_job
from actors.ledger_middleware import SOFT_TIME_LIMIT
from actors.registry import pipeline_actor
from workload_routes import ROUTES

STEP_SECONDS = 0.05


def sleep(job_id: str) -> None:
    job = current_job()
    seconds = float(job.record.filename.split("-")[1])
    deadline = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < deadline:
        job.checkpoint()
        time.sleep(STEP_SECONDS)
        steps += 1
        job.result = {"steps": steps}
    job.result = {"steps": steps, "slept": seconds}


def fail_once_then_succeed(job_id: str) -> None:
    job = current_job()
    if job.record.attempts == 1:
        raise ConnectionError("transient: the first attempt always fails")
    job.result = {"attempt": job.record.attempts}


def bad_input(job_id: str) -> None:
    raise UnsupportedDocument("this input can never be processed")


def overrun_hard_limit(job_id: str) -> None:
    time.sleep(30)  # no checkpoint: only the hard limit stops it


def stop_at_soft_limit(job_id: str) -> None:
    job = current_job()
    job.result = {"steps": 0}
    while True:
        job.checkpoint()
        time.sleep(STEP_SECONDS)
        job.result["steps"] += 1


_broker = dramatiq.get_broker()
_OPTIONS = {"max_retries": 3, "min_backoff": 100, "max_backoff": 500, "time_limit": 60_000}
pipeline_actor(sleep, _broker, ROUTES["sleep"], **_OPTIONS)
pipeline_actor(fail_once_then_succeed, _broker, ROUTES["fail_once_then_succeed"], **_OPTIONS)
pipeline_actor(bad_input, _broker, ROUTES["bad_input"], throws=(UnsupportedDocument,), **_OPTIONS)
pipeline_actor(overrun_hard_limit, _broker, ROUTES["overrun_hard_limit"], **{**_OPTIONS, "time_limit": 1_500})
pipeline_actor(stop_at_soft_limit, _broker, ROUTES["stop_at_soft_limit"], **{**_OPTIONS, SOFT_TIME_LIMIT: 1_000})
