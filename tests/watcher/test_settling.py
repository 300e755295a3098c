"""A file is settled once its size and mtime stayed the same for the settle time (clock injected)."""

from __future__ import annotations

from pathlib import Path

from watcher.settling import FileState, SettleTracker, file_state

A, B = Path("/in/a.txt"), Path("/in/b.txt")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_file_unchanged_for_the_settle_time_is_reported_once() -> None:
    clock = Clock()
    tracker = SettleTracker(2, clock)
    tracker.observe(A, FileState(10, 1))
    clock.advance(1.9)
    tracker.observe(A, FileState(10, 1))
    assert tracker.settled() == []
    clock.advance(0.1)
    assert tracker.settled() == [(A, FileState(10, 1))]
    assert tracker.settled() == []
    assert A not in tracker and len(tracker) == 0


def test_a_change_in_size_or_mtime_starts_the_settle_time_again() -> None:
    clock = Clock()
    tracker = SettleTracker(2, clock)
    tracker.observe(A, FileState(10, 1))
    clock.advance(1.5)
    tracker.observe(A, FileState(20, 2))  # the second half was written
    clock.advance(1.5)
    assert tracker.settled() == []
    tracker.observe(A, FileState(20, 3))  # same size, touched again
    clock.advance(1.9)
    assert tracker.settled() == []
    clock.advance(0.1)
    assert tracker.settled() == [(A, FileState(20, 3))]


def test_seeing_the_same_state_again_does_not_restart_the_clock() -> None:
    clock = Clock()
    tracker = SettleTracker(2, clock)
    tracker.observe(A, FileState(10, 1))
    for _ in range(4):
        clock.advance(0.5)
        tracker.observe(A, FileState(10, 1))
    assert tracker.settled() == [(A, FileState(10, 1))]


def test_a_file_that_disappears_is_forgotten() -> None:
    clock = Clock()
    tracker = SettleTracker(1, clock)
    tracker.observe(A, FileState(10, 1))
    tracker.observe(B, FileState(5, 1))
    tracker.observe(A, None)
    clock.advance(1)
    assert tracker.settled() == [(B, FileState(5, 1))]


def test_settled_files_come_in_path_order_and_each_on_its_own_time() -> None:
    clock = Clock()
    tracker = SettleTracker(3, clock)
    tracker.observe(B, FileState(1, 1))
    clock.advance(1)
    tracker.observe(A, FileState(1, 1))
    clock.advance(2)
    assert tracker.settled() == [(B, FileState(1, 1))]
    assert tracker.candidates() == [A]
    clock.advance(1)
    assert tracker.settled() == [(A, FileState(1, 1))]


def test_retry_later_holds_a_file_back_for_the_delay() -> None:
    clock = Clock()
    tracker = SettleTracker(1, clock)
    tracker.retry_later(A, FileState(10, 1), 30)
    clock.advance(29)
    assert tracker.settled() == []
    clock.advance(1)
    assert tracker.settled() == [(A, FileState(10, 1))]


def test_discard_drops_a_candidate() -> None:
    clock = Clock()
    tracker = SettleTracker(1, clock)
    tracker.observe(A, FileState(10, 1))
    tracker.discard(A)
    tracker.discard(B)
    clock.advance(5)
    assert tracker.settled() == []


def test_file_state_reads_regular_files_only(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"12345")
    state = file_state(path)
    assert state is not None and state.size == 5 and state.mtime_ns == path.stat().st_mtime_ns
    assert file_state(tmp_path) is None
    assert file_state(tmp_path / "missing.txt") is None
