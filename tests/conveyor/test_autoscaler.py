"""The autoscaler's interval: it acts on decisions through the backend, keeps
Prometheus's worker targets in step, and holds on any error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from conveyor.autoscaler import Autoscaler, AutoscalerMetrics, write_worker_targets
from conveyor.broker import broker_vhost
from conveyor.prometheus_load import LoadUnavailable, PrometheusLoadReader
from conveyor.scaling_policy import Load, ScaleDecider, ScalingPolicy
from conveyor.worker_backends import BackendError

POLICY = ScalingPolicy(min_workers=1, max_workers=6, target_backlog_per_worker=100, stabilization_seconds=0, max_step=3)


class ScriptedLoad:
    """Returns the loads it was given, in order; an exception in the script is raised."""

    def __init__(self, *loads: Load | Exception) -> None:
        self.loads = list(loads)

    def read(self) -> Load:
        item = self.loads.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class InstanceTable:
    """A backend keeping its instances in a set, recording what it was told."""

    def __init__(self, *running: int, fail: bool = False) -> None:
        self.instances = set(running)
        self.calls: list[str] = []
        self.fail = fail

    def running(self) -> list[int]:
        if self.fail:
            raise BackendError("systemctl: connection refused")
        return sorted(self.instances)

    def start(self, instance: int) -> None:
        self.calls.append(f"start {instance}")
        self.instances.add(instance)

    def stop(self, instance: int) -> None:
        self.calls.append(f"stop {instance}")
        self.instances.discard(instance)


def busy(ready: float) -> Load:
    return Load(ready_jobs=ready, in_progress_jobs=0, arrival_rate=0, completion_rate_per_worker=0, workers_up=1)


def autoscaler(reader, backend, targets: Path | None = None, dry_run: bool = False) -> tuple[Autoscaler, CollectorRegistry]:
    registry = CollectorRegistry()
    scaler = Autoscaler(
        reader, ScaleDecider(POLICY), backend, AutoscalerMetrics(registry),
        worker_targets=(lambda running: write_worker_targets(targets, running, 9191)) if targets else None,
        dry_run=dry_run, clock=iter(range(0, 10_000, 15)).__next__,
    )
    return scaler, registry


def test_scaling_up_starts_the_lowest_free_numbers_and_publishes_their_targets(tmp_path: Path) -> None:
    backend, targets = InstanceTable(0, 2), tmp_path / "conveyor-worker.json"
    scaler, registry = autoscaler(ScriptedLoad(busy(450)), backend, targets)
    decision = scaler.step()
    assert (decision.current, decision.desired) == (2, 5)
    assert backend.calls == ["start 1", "start 3", "start 4"]
    assert json.loads(targets.read_text()) == [{"targets": [f"127.0.0.1:{9191 + n}" for n in range(5)]}]
    assert registry.get_sample_value("conveyor_autoscaler_current_workers") == 5
    assert registry.get_sample_value("conveyor_autoscaler_decisions_total", {"direction": "up"}) == 1


def test_scaling_down_drains_the_highest_numbered_instances(tmp_path: Path) -> None:
    backend, targets = InstanceTable(0, 1, 2, 3), tmp_path / "conveyor-worker.json"
    scaler, _ = autoscaler(ScriptedLoad(busy(150)), backend, targets)
    assert scaler.step().desired == 2
    assert backend.calls == ["stop 3", "stop 2"]
    assert json.loads(targets.read_text()) == [{"targets": ["127.0.0.1:9191", "127.0.0.1:9192"]}]


def test_without_the_load_it_holds_and_counts_the_error(caplog: pytest.LogCaptureFixture) -> None:
    backend = InstanceTable(0, 1, 2)
    scaler, registry = autoscaler(ScriptedLoad(LoadUnavailable("Prometheus at http://127.0.0.1:9: refused")), backend)
    assert scaler.step() is None
    assert backend.calls == [] and backend.instances == {0, 1, 2}
    assert registry.get_sample_value("conveyor_autoscaler_errors_total", {"source": "prometheus"}) == 1
    assert registry.get_sample_value("conveyor_autoscaler_last_error_timestamp_seconds") > 0
    assert "holding 3 workers" in caplog.text


def test_without_the_load_it_still_starts_the_configured_minimum() -> None:
    backend = InstanceTable()
    scaler, _ = autoscaler(ScriptedLoad(LoadUnavailable("no series")), backend)
    assert scaler.step() is None
    assert backend.calls == ["start 0"]


def test_a_failing_backend_holds_too() -> None:
    scaler, registry = autoscaler(ScriptedLoad(busy(1000)), InstanceTable(fail=True))
    assert scaler.step() is None
    assert registry.get_sample_value("conveyor_autoscaler_errors_total", {"source": "backend"}) == 1


def test_a_dry_run_decides_and_logs_but_touches_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    backend, targets = InstanceTable(0), tmp_path / "conveyor-worker.json"
    scaler, registry = autoscaler(ScriptedLoad(busy(450)), backend, targets, dry_run=True)
    assert scaler.step().desired == 4
    assert backend.calls == [] and not targets.exists()
    assert registry.get_sample_value("conveyor_autoscaler_desired_workers") == 4
    assert "[dry run] ready=450" in caplog.text and "1 -> 4 (up)" in caplog.text


def test_an_unreachable_prometheus_is_load_unavailable(free_port) -> None:
    with pytest.raises(LoadUnavailable, match="Prometheus at"):
        PrometheusLoadReader(f"http://127.0.0.1:{free_port()}", "/", timeout=1).read()


@pytest.mark.parametrize(
    "url, vhost",
    [("amqp://guest:guest@127.0.0.1:5672/%2F", "/"), ("amqp://h:5672", "/"), ("amqp://h/conveyor-test-1", "conveyor-test-1")],
)
def test_the_vhost_comes_from_the_broker_url(url: str, vhost: str) -> None:
    assert broker_vhost(url) == vhost
