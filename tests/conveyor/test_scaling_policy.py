"""The autoscaler's decisions: backlog and rate terms, tolerance, clamping,
immediate scale-up, stabilized scale-down and the step limit."""

from __future__ import annotations

import pytest

from conveyor.scaling_policy import Load, ScaleDecider, ScalingPolicy

POLICY = ScalingPolicy(
    min_workers=1, max_workers=8, target_backlog_per_worker=100, tolerance=0.1, stabilization_seconds=300, max_step=2
)


def load(ready: float = 0, in_progress: float = 0, arrival: float = 0, per_worker: float = 0) -> Load:
    return Load(ready, in_progress, arrival, per_worker, workers_up=1)


def test_the_backlog_term_asks_one_worker_per_target_backlog_rounded_up() -> None:
    decision = ScaleDecider(POLICY).decide(load(ready=250, in_progress=51), current=4, now=0)
    assert (decision.by_backlog, decision.by_rate, decision.desired) == (4, 0, 4)


def test_the_rate_term_wins_when_arrivals_outrun_the_measured_throughput() -> None:
    decider = ScaleDecider(POLICY)
    decision = decider.decide(load(ready=10, arrival=25, per_worker=10), current=3, now=0)
    assert (decision.by_backlog, decision.by_rate, decision.desired) == (1, 3, 3)


def test_throughput_is_measured_only_while_jobs_wait_and_then_remembered() -> None:
    decider = ScaleDecider(POLICY)
    assert decider.decide(load(arrival=5, per_worker=1), current=1, now=0).by_rate == 0  # idle: says nothing
    decider.decide(load(ready=50, arrival=5, per_worker=5), current=1, now=1)
    assert decider.capacity_per_worker == 5
    assert decider.decide(load(arrival=20, per_worker=0.5), current=1, now=2).by_rate == 4


def test_scale_up_is_immediate_but_limited_to_the_maximum_step() -> None:
    decider = ScaleDecider(POLICY)
    first = decider.decide(load(ready=700), current=1, now=0)
    assert (first.recommended, first.desired, first.direction) == (7, 3, "up")
    assert decider.decide(load(ready=700), current=3, now=15).desired == 5


def test_recommendations_are_clamped_to_min_and_max() -> None:
    decider = ScaleDecider(POLICY)
    assert decider.decide(load(ready=5000), current=8, now=0).desired == 8
    assert ScaleDecider(POLICY).decide(load(), current=0, now=0).desired == 1


def test_a_change_within_the_tolerance_is_ignored() -> None:
    assert ScaleDecider(POLICY).decide(load(ready=1050), current=10, now=0).recommended == 8  # clamped
    wide = ScalingPolicy(min_workers=1, max_workers=20, tolerance=0.1)
    assert ScaleDecider(wide).decide(load(ready=1050), current=10, now=0).desired == 10  # 11 is within 10 %
    assert ScaleDecider(wide).decide(load(ready=1250), current=10, now=0).desired == 12


def test_scale_down_waits_for_the_whole_window_and_takes_its_highest_recommendation() -> None:
    decider = ScaleDecider(POLICY)
    decider.decide(load(ready=400), current=4, now=0)  # recommends 4
    decider.decide(load(ready=300), current=4, now=100)  # recommends 3
    quiet = decider.decide(load(), current=4, now=200)
    assert (quiet.recommended, quiet.stabilized, quiet.direction) == (1, 4, "hold")
    assert decider.decide(load(), current=4, now=350).desired == 3  # the 4 at t=0 left the window
    after = decider.decide(load(), current=3, now=401)  # the 3 at t=100 left too
    assert (after.stabilized, after.desired, after.direction) == (1, 1, "down")


def test_scale_down_moves_at_most_the_maximum_step() -> None:
    decider = ScaleDecider(ScalingPolicy(min_workers=1, max_workers=8, stabilization_seconds=0, max_step=2))
    assert decider.decide(load(), current=8, now=0).desired == 6


def test_a_policy_that_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError):
        ScalingPolicy(min_workers=5, max_workers=2)
    with pytest.raises(ValueError):
        ScalingPolicy(max_step=0)
    with pytest.raises(ValueError):
        ScalingPolicy(tolerance=1.0)
