"""How many worker instances the load asks for: the autoscaler's decisions.

Two terms, the larger wins:

* **backlog** (KEDA's queue-length mode): jobs waiting or running divided by
  the backlog one worker should carry, rounded up;
* **rate**: jobs arriving per second divided by what one worker completes per
  second, rounded up.  One worker's throughput is only measured while jobs
  wait (a worker with nothing to do says nothing about its capacity); the last
  such measure is kept for the quiet periods between bursts.

Then, as Kubernetes' horizontal pod autoscaler does: a change within the
tolerance of the current count is ignored; the result is clamped to
``[min_workers, max_workers]``; scaling up happens at once, scaling down only
to the highest recommendation of the stabilization window; no decision moves
more than ``max_step`` instances.  No input, no decision: the caller holds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ScalingPolicy:
    min_workers: int = 1
    max_workers: int = 4
    target_backlog_per_worker: float = 100.0
    tolerance: float = 0.1
    stabilization_seconds: float = 300.0
    max_step: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.min_workers <= self.max_workers or self.max_workers < 1:
            raise ValueError("need 0 <= min_workers <= max_workers and max_workers >= 1")
        if self.target_backlog_per_worker <= 0 or self.max_step < 1:
            raise ValueError("target_backlog_per_worker must be positive and max_step at least 1")
        if not 0 <= self.tolerance < 1 or self.stabilization_seconds < 0:
            raise ValueError("tolerance must be in [0, 1) and stabilization_seconds not negative")


@dataclass(frozen=True)
class Load:
    """What Prometheus says about the work, read once per interval."""

    ready_jobs: float  # messages waiting in the job queues
    in_progress_jobs: float  # jobs the workers are running
    arrival_rate: float  # jobs published per second
    completion_rate_per_worker: float  # jobs finished per second per worker up
    workers_up: float  # worker instances Prometheus scrapes successfully


@dataclass(frozen=True)
class Decision:
    current: int
    by_backlog: int
    by_rate: int
    recommended: int  # after tolerance and clamping
    stabilized: int  # highest recommendation of the window (what a scale-down may go to)
    desired: int  # what the autoscaler sets now

    @property
    def direction(self) -> str:
        return "up" if self.desired > self.current else "down" if self.desired < self.current else "hold"


class ScaleDecider:
    """Turns each interval's :class:`Load` into a :class:`Decision`, remembering
    the recommendations of the stabilization window and one worker's capacity."""

    def __init__(self, policy: ScalingPolicy) -> None:
        self.policy = policy
        self.capacity_per_worker: float | None = None  # jobs/s one busy worker completes
        self._window: deque[tuple[float, int]] = deque()

    def decide(self, load: Load, current: int, now: float) -> Decision:
        policy = self.policy
        if load.ready_jobs > 0 and load.completion_rate_per_worker > 0:
            self.capacity_per_worker = load.completion_rate_per_worker
        backlog_need = (load.ready_jobs + load.in_progress_jobs) / policy.target_backlog_per_worker
        rate_need = load.arrival_rate / self.capacity_per_worker if self.capacity_per_worker else 0.0
        need = max(backlog_need, rate_need)  # in workers, unrounded
        if current > 0 and abs(need / current - 1) <= policy.tolerance:
            wanted = current
        else:
            wanted = math.ceil(need)
        by_backlog, by_rate = math.ceil(backlog_need), math.ceil(rate_need)
        recommended = min(max(wanted, policy.min_workers), policy.max_workers)

        self._window.append((now, recommended))
        while self._window[0][0] < now - policy.stabilization_seconds:
            self._window.popleft()
        stabilized = max(recommendation for _, recommendation in self._window)

        if recommended > current:
            desired = min(recommended, current + policy.max_step)
        elif stabilized < current:
            desired = max(stabilized, current - policy.max_step)
        else:
            desired = current
        desired = min(max(desired, policy.min_workers), policy.max_workers)
        return Decision(current, by_backlog, by_rate, recommended, stabilized, desired)
