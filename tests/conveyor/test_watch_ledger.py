"""Watched directories and their submission history, identically on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from conveyor.ledger import Ledger
from conveyor.ledger.access import UnknownClient
from conveyor.ledger.watching import (
    DuplicateWatchedDirectory,
    InvalidWatchedDirectory,
    WatchLedger,
    directory_id_for,
)

DIGEST_A, DIGEST_B, DIGEST_C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def watching(ledger: Ledger) -> WatchLedger:
    return WatchLedger(ledger.engine)


@pytest.fixture
def client_id(ledger: Ledger) -> str:
    return ledger.create_client(name="scanner", tier="standard", scopes=["batches:write"], secret_hash="x").id


def test_a_directory_is_stored_normalised_and_listed(watching: WatchLedger, client_id: str) -> None:
    added = watching.add_directory("/data/in//reports/../scans/", client_id, True, [".PDF", ".txt", ".pdf"], 3)
    assert added.path == "/data/in/scans"
    assert added.id == directory_id_for("/data/in/scans")
    assert (added.client_id, added.recursive, added.extensions, added.settle_seconds) == (client_id, True, (".pdf", ".txt"), 3)
    assert added.created_at.tzinfo is not None
    assert watching.list_directories() == [added]
    assert watching.get_directory(added.id) == added


def test_the_same_path_is_refused_twice(watching: WatchLedger, client_id: str) -> None:
    first = watching.add_directory("/data/in", client_id, False, [".txt"], 2)
    with pytest.raises(DuplicateWatchedDirectory, match="/data/in is watched already") as raised:
        watching.add_directory("/data/./in/", client_id, True, [".csv"], 5)
    assert raised.value.directory_id == first.id
    assert watching.list_directories() == [first]


@pytest.mark.parametrize(
    ("path", "extensions", "settle", "problem"),
    [
        ("data/in", [".txt"], 2, "must be absolute"),
        ("", [".txt"], 2, "non-empty absolute path"),
        ("/data/\x00in", [".txt"], 2, "control characters"),
        ("/" + "x" * 1000, [".txt"], 2, "at most 1000"),
        ("/data/in", [], 2, "at least one extension"),
        ("/data/in", ["txt"], 2, "must be like .txt"),
        ("/data/in", [".t xt"], 2, "must be like .txt"),
        ("/data/in", [".txt"], 0, "between 1 and"),
        ("/data/in", [".txt"], True, "must be an integer"),
    ],
)
def test_bad_arguments_are_refused_naming_the_problem(
    watching: WatchLedger, client_id: str, path: str, extensions: list[str], settle: int, problem: str
) -> None:
    with pytest.raises(InvalidWatchedDirectory, match=problem):
        watching.add_directory(path, client_id, False, extensions, settle)
    assert watching.list_directories() == []


def test_an_unknown_client_is_refused(watching: WatchLedger) -> None:
    with pytest.raises(UnknownClient):
        watching.add_directory("/data/in", "cl_nobody", False, [".txt"], 2)


def test_removing_keeps_the_history_and_adding_again_finds_it(watching: WatchLedger, client_id: str) -> None:
    directory = watching.add_directory("/data/in", client_id, False, [".txt"], 2)
    assert watching.record_submission(directory.id, DIGEST_A, "/data/in/a.txt", "batch-1")
    assert watching.remove_directory(directory.id)
    assert not watching.remove_directory(directory.id)
    assert watching.list_directories() == []
    again = watching.add_directory("/data/in/", client_id, False, [".txt"], 2)
    assert again.id == directory.id
    assert watching.submitted_digests(again.id, [DIGEST_A, DIGEST_B]) == {DIGEST_A}
    assert watching.submission(again.id, DIGEST_A) == ("/data/in/a.txt", "batch-1")


def test_history_is_per_directory_and_recording_twice_changes_nothing(watching: WatchLedger, client_id: str) -> None:
    first = watching.add_directory("/data/one", client_id, False, [".txt"], 2)
    second = watching.add_directory("/data/two", client_id, False, [".txt"], 2)
    assert watching.record_submission(first.id, DIGEST_A, "/data/one/a.txt", "batch-1")
    assert not watching.record_submission(first.id, DIGEST_A, "/data/one/copy.txt", "batch-1")
    assert watching.record_submission(first.id, DIGEST_B, "/data/one/b.txt", "batch-2")
    assert watching.submitted_digests(first.id, [DIGEST_A, DIGEST_B, DIGEST_C]) == {DIGEST_A, DIGEST_B}
    assert watching.submitted_digests(second.id, [DIGEST_A, DIGEST_B]) == set()
    assert watching.submitted_digests(first.id, []) == set()
    assert watching.submission(first.id, DIGEST_A) == ("/data/one/a.txt", "batch-1")


def test_many_digests_are_looked_up_in_parts(watching: WatchLedger, client_id: str) -> None:
    directory = watching.add_directory("/data/in", client_id, False, [".txt"], 2)
    digests = [f"{number:064x}" for number in range(1200)]
    for digest in digests[::100]:
        watching.record_submission(directory.id, digest, f"/data/in/{digest[-4:]}.txt", "batch")
    assert watching.submitted_digests(directory.id, digests) == set(digests[::100])


def test_ensure_directory_adds_then_updates_in_place(watching: WatchLedger, ledger: Ledger, client_id: str) -> None:
    added = watching.ensure_directory("/data/in", client_id, False, [".txt"], 2)
    other = ledger.create_client(name="other", tier="free", scopes=["batches:write"], secret_hash="x").id
    updated = watching.ensure_directory("/data/in/", other, True, [".csv"], 7)
    assert (updated.id, updated.created_at) == (added.id, added.created_at)
    assert (updated.client_id, updated.recursive, updated.extensions, updated.settle_seconds) == (other, True, (".csv",), 7)
    assert watching.list_directories() == [updated]


def test_concurrent_adds_of_one_path_make_one_directory(watching: WatchLedger, client_id: str) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def add() -> None:
        barrier.wait()
        try:
            watching.add_directory("/data/race", client_id, False, [".txt"], 2)
            outcomes.append("added")
        except DuplicateWatchedDirectory:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["added", "duplicate", "duplicate", "duplicate"]
    assert len(watching.list_directories()) == 1
