"""Workers under faults, on real RabbitMQ with real worker processes: killed,
stopped, cancelled, over their limits.  Every job must end exactly once in
the ledger whatever happens to the processes around it.

The jobs of these tests run the controllable pipelines of ``workloads.py``
(routes in ``workload_routes.py``);
their batches are recorded and published exactly as the gateway does it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import pika
import pytest

from conveyor.blobs import BlobStore
from conveyor.ledger import BatchStatus, JobState
from conveyor.processes import ManagedProcess
from conveyor.settings import Settings
from workload_routes import QUEUE
from workload_submitter import Workloads


@pytest.fixture
def workloads(service_settings: Settings, make_client) -> Iterator[Workloads]:
    workloads = Workloads(service_settings, make_client(tier="standard"))
    yield workloads
    workloads.close()


def _dead_letters(settings: Settings, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        return connection.channel().queue_declare(f"{queue}.XQ", passive=True).method.message_count
    finally:
        connection.close()


def _kill(worker: ManagedProcess) -> None:
    os.killpg(worker.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while worker.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker.is_running()


def test_sigkill_three_times_during_300_jobs_loses_and_duplicates_nothing(workloads: Workloads, start_worker) -> None:
    worker = start_worker(workloads=True, threads=8)
    batch = workloads.submit([("sleep", f"sleep-0.1-{n}.txt") for n in range(300)])
    for kill in range(3):
        threshold = 40 + 70 * kill
        workloads.wait_until(
            lambda: workloads.batch(batch.id).succeeded_jobs >= threshold and workloads.running(batch.id) > 0,
            120,
            f"{threshold} jobs done with more running",
        )
        _kill(worker)
        worker = start_worker(workloads=True, threads=8)
    final = workloads.wait_for_end(batch.id)
    jobs = workloads.jobs(batch.id)
    assert final.status == BatchStatus.COMPLETED
    assert (final.total_jobs, final.succeeded_jobs, final.failed_jobs, final.cancelled_jobs) == (300, 300, 0, 0)
    assert all(job.state == JobState.SUCCEEDED and job.result["slept"] == 0.1 for job in jobs)
    rerun = [job for job in jobs if job.attempts > 1]
    assert rerun, "the kills should have hit running jobs, which run again"
    assert sum(job.attempts for job in jobs) == 300 + len(rerun) + sum(job.attempts - 2 for job in rerun)


def test_sigterm_lets_in_flight_jobs_finish_before_the_worker_exits(workloads: Workloads, start_worker) -> None:
    worker = start_worker(workloads=True, threads=4)
    batch = workloads.submit([("sleep", f"sleep-3-{n}.txt") for n in range(4)])
    workloads.wait_until(lambda: workloads.running(batch.id) == 4, 60, "four jobs running")
    worker.stop(timeout=60)  # SIGTERM, and wait for the exit
    jobs = workloads.jobs(batch.id)
    assert [(job.state, job.attempts) for job in jobs] == [(JobState.SUCCEEDED, 1)] * 4
    assert all(job.result["slept"] == 3 for job in jobs)
    assert workloads.batch(batch.id).status == BatchStatus.COMPLETED


def test_cancelling_a_batch_stops_its_running_jobs_at_their_next_checkpoint(
    workloads: Workloads, start_worker, gateway
) -> None:
    start_worker(workloads=True, threads=4)
    batch = workloads.submit([("sleep", f"sleep-600-{n}.txt") for n in range(12)])
    workloads.wait_until(lambda: workloads.running(batch.id) == 4, 60, "four jobs running")
    token = gateway.token(workloads.credential)
    cancelled = httpx.delete(f"{gateway.url}/api/v1/batches/{batch.id}", headers={"Authorization": f"Bearer {token}"})
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["counts"]["cancelled"] == 8  # the queued ones, at once
    final = workloads.wait_for_end(batch.id, timeout=30)  # the running ones would take 600 s
    jobs = workloads.jobs(batch.id)
    assert (final.status, final.cancelled_jobs) == (BatchStatus.CANCELLED, 12)
    stopped = [job for job in jobs if job.result is not None]
    assert len(stopped) == 4
    for job in stopped:
        assert job.state == JobState.CANCELLED and job.error == "cancelled while running"
        assert job.result["partial"] is True and 0 < job.result["steps"] < 600 / 0.05


def test_retries_limits_and_permanent_failures_each_end_in_one_recorded_state(
    workloads: Workloads, start_worker, service_settings: Settings
) -> None:
    start_worker(workloads=True, threads=4)
    batch = workloads.submit(
        [
            ("fail_once_then_succeed", "flaky.txt"),
            ("bad_input", "bad.txt"),
            ("overrun_hard_limit", "overrun.txt"),
            ("stop_at_soft_limit", "soft.txt"),
        ]
    )
    final = workloads.wait_for_end(batch.id, timeout=60)
    flaky, bad, overrun, soft = workloads.jobs(batch.id)
    assert (flaky.state, flaky.attempts, flaky.result) == (JobState.SUCCEEDED, 2, {"attempt": 2})
    assert (bad.state, bad.attempts, bad.error) == (JobState.FAILED, 1, "this input can never be processed")
    assert (overrun.state, overrun.attempts, overrun.error) == (JobState.FAILED, 1, "hard time limit of 1.5 s exceeded")
    assert (soft.state, soft.attempts) == (JobState.SUCCEEDED, 1)
    assert soft.result["partial"] is True and soft.result["partial_reason"] == "soft time limit of 1 s reached"
    assert soft.result["steps"] > 5
    assert (final.status, final.succeeded_jobs, final.failed_jobs) == (BatchStatus.PARTIALLY_COMPLETED, 2, 2)
    assert _dead_letters(service_settings, QUEUE) == 2


def test_a_dead_lettered_job_is_failed_with_its_reason_and_the_api_retry_runs_it_again(
    gateway, start_worker, make_client, service_settings: Settings
) -> None:
    token = gateway.token(make_client(tier="standard"))
    accepted = gateway.upload(token, {"report.txt": b"the quarterly report, in plain words"})
    (job,) = gateway.jobs(token, accepted["id"])
    blobs = BlobStore(service_settings.blob_dir)
    content = blobs.read(job["sha256"])
    blobs.delete(job["sha256"])  # storage lost the file: every attempt fails
    start_worker()
    failed = gateway.wait_for_batch(token, accepted["id"], timeout=120)
    (job,) = gateway.jobs(token, accepted["id"])
    assert failed["status"] == "FAILED"
    assert (job["state"], job["attempts"]) == ("FAILED", 4)  # the first run and three retries
    assert job["error"].startswith("FileNotFoundError")
    assert _dead_letters(service_settings, "documents") == 1

    assert blobs.put(content) == job["sha256"]  # storage is back
    retried = httpx.post(f"{gateway.url}/api/v1/batches/{accepted['id']}/retry", headers={"Authorization": f"Bearer {token}"})
    assert retried.status_code == 202, retried.text
    final = gateway.wait_for_batch(token, accepted["id"])
    (job,) = gateway.jobs(token, accepted["id"])
    assert final["status"] == "COMPLETED"
    assert (job["state"], job["attempts"], job["error"]) == ("SUCCEEDED", 5, None)
    assert job["result"]["word_count"] == 6
