"""The autoscaler: every interval, read the load from Prometheus, decide, and
start or drain worker instances through a backend.

It never acts on a guess: when Prometheus is unreachable or lacks the queue
depth, or the backend fails, it holds the current count (only raising it to
the configured minimum, which needs no load figure), counts the error and
says so.  Scale-up starts the lowest free instance numbers; scale-down drains
the highest-numbered instances one by one (SIGTERM; running jobs finish).
After every change it rewrites the worker targets file Prometheus discovers
worker instances from, so a stopped instance is not reported as down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from conveyor.prometheus_load import LoadUnavailable, PrometheusLoadReader
from conveyor.prometheus_server import write_targets
from conveyor.scaling_policy import Decision, Load, ScaleDecider
from conveyor.worker_backends import BackendError, WorkerBackend, scale_to

logger = logging.getLogger("conveyor.autoscaler")

DIRECTIONS = ("up", "down", "hold")


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.desired = Gauge("conveyor_autoscaler_desired_workers", "Worker instances the last decision asked for.", registry=registry)
        self.current = Gauge("conveyor_autoscaler_current_workers", "Worker instances running, as the backend reports.", registry=registry)
        self.decisions = Counter(
            "conveyor_autoscaler_decisions", "Decisions taken, by direction.", ["direction"], registry=registry
        )
        self.errors = Counter(
            "conveyor_autoscaler_errors", "Intervals held because of an error, by source.", ["source"], registry=registry
        )
        self.last_error = Gauge(
            "conveyor_autoscaler_last_error_timestamp_seconds", "When the last error happened (0: never).", registry=registry
        )
        for direction in DIRECTIONS:
            self.decisions.labels(direction)
        for source in ("prometheus", "backend"):
            self.errors.labels(source)


def describe(load: Load, decision: Decision) -> str:
    return (
        f"ready={load.ready_jobs:g} in_progress={load.in_progress_jobs:g} arrival={load.arrival_rate:.2f}/s "
        f"per_worker={load.completion_rate_per_worker:.2f}/s workers_up={load.workers_up:g} -> "
        f"backlog term {decision.by_backlog}, rate term {decision.by_rate}, recommended {decision.recommended}, "
        f"window max {decision.stabilized}: {decision.current} -> {decision.desired} ({decision.direction})"
    )


def write_worker_targets(path: Path, instances: list[int], metrics_port: int, host: str = "127.0.0.1") -> None:
    """Prometheus file-discovery targets of the running instances."""
    write_targets(path, [f"{host}:{metrics_port + instance}" for instance in instances])


class Autoscaler:
    def __init__(
        self,
        reader: PrometheusLoadReader,
        decider: ScaleDecider,
        backend: WorkerBackend,
        metrics: AutoscalerMetrics,
        worker_targets: Callable[[list[int]], None] | None = None,
        dry_run: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.decider = decider
        self.backend = backend
        self.metrics = metrics
        self.worker_targets = worker_targets
        self.dry_run = dry_run
        self.clock = clock
        self._published: list[int] | None = None  # the instances the targets file lists now

    def _error(self, source: str, error: Exception, current: int | None) -> None:
        self.metrics.errors.labels(source).inc()
        self.metrics.last_error.set(time.time())
        holding = f"holding {current} workers" if current is not None else "holding"
        logger.warning("%s error, %s: %s", source, holding, error)

    def step(self) -> Decision | None:
        """One interval: returns the decision taken, or ``None`` if it held on an error."""
        try:
            running = self.backend.running()
        except BackendError as error:
            self._error("backend", error, None)
            return None
        self.metrics.current.set(len(running))
        self._publish_targets(running)
        try:
            load = self.reader.read()
        except LoadUnavailable as error:
            self._error("prometheus", error, len(running))
            if len(running) < self.decider.policy.min_workers and not self.dry_run:
                self._enforce_minimum()  # safe whatever the load: the operator's floor
            return None
        decision = self.decider.decide(load, len(running), self.clock())
        self.metrics.desired.set(decision.desired)
        self.metrics.decisions.labels(decision.direction).inc()
        logger.info("%s%s", "[dry run] " if self.dry_run else "", describe(load, decision))
        if not self.dry_run and decision.direction != "hold":
            try:
                self._apply(decision.desired)
            except BackendError as error:
                self._error("backend", error, len(running))
        return decision

    def _apply(self, desired: int) -> None:
        self.metrics.current.set(len(scale_to(self.backend, desired, self._publish_targets)))

    def _enforce_minimum(self) -> None:
        try:
            self._apply(self.decider.policy.min_workers)
        except BackendError as error:
            self._error("backend", error, None)

    def _publish_targets(self, running: list[int]) -> None:
        """Rewrite the targets file when the running set changed (each rewrite makes Prometheus reload it)."""
        if self.worker_targets is not None and not self.dry_run and running != self._published:
            self.worker_targets(running)
            self._published = list(running)

    def run(self, interval_seconds: float, stop: Callable[[], bool]) -> None:
        """Step every ``interval_seconds`` until ``stop()`` is true."""
        while not stop():
            started = self.clock()
            self.step()
            while not stop() and self.clock() < started + interval_seconds:
                time.sleep(min(0.2, interval_seconds))
