"""The autoscaler against a real Prometheus, with its local backend: a burst
scales workers up from the minimum, the backlog drains, workers return to the
minimum after the (shortened) stabilization window, and no job is lost or run
twice across the scale-down.  With Prometheus unreachable it holds its count."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from process_waits import wait_for
from prometheus_client.parser import text_string_to_metric_families

from conveyor.processes import ManagedProcess, start_process
from conveyor.settings import Settings
from conveyor.worker_backends import LocalBackend

REPOSITORY = Path(__file__).resolve().parents[2]
BURST_BATCHES, FILES_PER_BATCH = 4, 500  # 2,000 short jobs
MAX_WORKERS = 3


def autoscaler_environment(
    service_environment: dict[str, str], tmp_path: Path, free_port: Callable[[], int], prometheus_url: str, **overrides: str
) -> dict[str, str]:
    return {
        **service_environment,
        "CONVEYOR_AUTOSCALER_PROMETHEUS_URL": prometheus_url,
        "CONVEYOR_AUTOSCALER_INTERVAL_SECONDS": "1",
        "CONVEYOR_AUTOSCALER_MIN_WORKERS": "1",
        "CONVEYOR_AUTOSCALER_MAX_WORKERS": str(MAX_WORKERS),
        "CONVEYOR_AUTOSCALER_TARGET_BACKLOG_PER_WORKER": "200",
        "CONVEYOR_AUTOSCALER_STABILIZATION_SECONDS": "10",
        "CONVEYOR_AUTOSCALER_STATE_DIR": str(tmp_path / "workers"),
        "CONVEYOR_AUTOSCALER_METRICS_PORT": str(free_port()),
        "CONVEYOR_WORKER_METRICS_PORT": str(free_port()),
        "CONVEYOR_WORKER_METRICS_DIR": str(tmp_path / "worker-metrics"),
        "CONVEYOR_WORKER_THREADS": "2",
        **overrides,
    }


def start_autoscaler(environment: dict[str, str], tmp_path: Path) -> ManagedProcess:
    return start_process(
        "autoscaler", [sys.executable, str(REPOSITORY / "platform" / "autoscaler.py")], environment,
        tmp_path / "autoscaler.log", REPOSITORY,
    )


def stop_everything(autoscaler: ManagedProcess, workers: LocalBackend) -> None:
    autoscaler.stop()
    for instance in workers.running():
        workers.stop(instance)


def autoscaler_metric(port: str, name: str, **labels: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items()):
                return sample.value
    raise AssertionError(f"{name} {labels} not exported")


def test_a_burst_scales_workers_up_drains_and_returns_to_the_minimum_without_losing_a_job(
    start_gateway, start_prometheus, make_client, service_environment: dict[str, str], service_settings: Settings,
    tmp_path: Path, free_port,
) -> None:
    gateway = start_gateway(CONVEYOR_BUSINESS_METRICS_SECONDS="1")
    prometheus = start_prometheus(
        {
            "conveyor-gateway": [urlsplit(gateway.url).netloc],
            "rabbitmq": [service_settings.rabbitmq_metrics_address],
            "rabbitmq-detailed": [service_settings.rabbitmq_metrics_address],
        }
    )
    environment = autoscaler_environment(
        service_environment, tmp_path, free_port, prometheus.url,
        CONVEYOR_AUTOSCALER_WORKER_TARGETS_FILE=str(prometheus.config_dir / "targets" / "conveyor-worker.json"),
    )
    workers = LocalBackend(tmp_path / "workers", environment, REPOSITORY)
    autoscaler = start_autoscaler(environment, tmp_path)
    counts: list[tuple[float, int]] = []  # (seconds since the burst, instances running)
    watching = threading.Event()
    try:
        wait_for(lambda: workers.running() == [0], 60, "the minimum of one worker", [autoscaler])
        token = gateway.token(make_client(tier="enterprise"))

        def watch(started: float) -> None:
            while not watching.is_set():
                counts.append((time.monotonic() - started, len(workers.running())))
                time.sleep(0.2)

        burst_started = time.monotonic()
        watcher = threading.Thread(target=watch, args=(burst_started,))
        watcher.start()
        batches = []
        for b in range(BURST_BATCHES):
            files = {f"b{b}-{n}.txt": f"short job {b} {n}".encode() for n in range(FILES_PER_BATCH)}
            batches.append(gateway.upload(token, files)["id"])
            if b == 0:
                first_queued = time.monotonic()
        wait_for(lambda: len(workers.running()) > 1, 60, "a scale-up", [autoscaler])
        reaction = time.monotonic() - first_queued
        for batch_id in batches:
            assert gateway.wait_for_batch(token, batch_id, timeout=300)["status"] == "COMPLETED"
        drained_after = time.monotonic() - burst_started
        peak = max(count for _, count in counts)

        # Work keeps trickling in (4 jobs/s, less than one worker does) while the
        # window passes and instances drain.
        trickle = []
        while len(workers.running()) > 1:
            assert time.monotonic() - burst_started < drained_after + 120, "workers never went back to the minimum"
            trickle.append(gateway.upload(token, {f"t{len(trickle)}-{n}.txt": b"late work" for n in range(2)})["id"])
            time.sleep(0.5)
        back_to_min_after = time.monotonic() - burst_started
        for batch_id in trickle:
            assert gateway.wait_for_batch(token, batch_id, timeout=120)["status"] == "COMPLETED"
    finally:
        watching.set()
        stop_everything(autoscaler, workers)

    assert peak >= 2, counts
    assert peak <= MAX_WORKERS
    for batch_id in batches + trickle:
        jobs = gateway.jobs(token, batch_id)
        assert {(job["state"], job["attempts"]) for job in jobs} == {("SUCCEEDED", 1)}, "each job ran once"
    assert sum(len(gateway.jobs(token, batch_id)) for batch_id in batches) == BURST_BATCHES * FILES_PER_BATCH
    log = (tmp_path / "autoscaler.log").read_text()
    assert "(up)" in log and "(down)" in log and "draining worker instance" in log
    print(f"\ndrain seconds per stopped instance: {drain_seconds(log)}")
    print(
        f"scale-up {reaction:.1f} s after the first jobs were queued; peak {peak} workers; backlog drained at "
        f"{drained_after:.1f} s; back to 1 worker at {back_to_min_after:.1f} s; trickle batches {len(trickle)}"
    )


def drain_seconds(log: str) -> dict[int, float]:
    """Instance → seconds from 'draining worker instance N' to 'worker instance N stopped' in the autoscaler's log."""
    moments: dict[tuple[str, int], datetime] = {}
    for match in re.finditer(r"^(\S+ \S+) conveyor\.workers INFO (draining worker instance|worker instance) (\d+)", log, re.M):
        moments[(match.group(2), int(match.group(3)))] = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return {
        instance: round((moments[("worker instance", instance)] - began).total_seconds(), 1)
        for (kind, instance), began in moments.items()
        if kind == "draining worker instance" and ("worker instance", instance) in moments
    }


@pytest.mark.usefixtures("service_settings")  # a migrated ledger for the workers
def test_with_prometheus_unreachable_the_autoscaler_holds_its_count(
    service_environment: dict[str, str], tmp_path: Path, free_port
) -> None:
    environment = autoscaler_environment(
        service_environment, tmp_path, free_port, f"http://127.0.0.1:{free_port()}", CONVEYOR_AUTOSCALER_MIN_WORKERS="1"
    )
    workers = LocalBackend(tmp_path / "workers", environment, REPOSITORY)
    workers.start(0)
    workers.start(1)
    autoscaler = start_autoscaler(environment, tmp_path)
    port = environment["CONVEYOR_AUTOSCALER_METRICS_PORT"]
    try:
        wait_for(
            lambda: _errors(port) >= 5, 60, "five intervals without Prometheus", [autoscaler]
        )
        assert workers.running() == [0, 1]
        assert autoscaler_metric(port, "conveyor_autoscaler_current_workers") == 2
        assert autoscaler_metric(port, "conveyor_autoscaler_decisions_total", direction="down") == 0
        assert "prometheus error, holding 2 workers" in autoscaler.log_path.read_text()
    finally:
        stop_everything(autoscaler, workers)


def _errors(port: str) -> float:
    try:
        return autoscaler_metric(port, "conveyor_autoscaler_errors_total", source="prometheus")
    except httpx.TransportError:
        return 0.0
