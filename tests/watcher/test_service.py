"""The watcher service on a real ledger and real filesystem events, with a stand-in
for the gateway that keeps the API's idempotency rules (same key and file: the
same batch; same key, other file name: 409) and a clock driven by the test."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.ledger import DuplicateIdempotencyKey, Ledger, NewJob
from conveyor.ledger.watching import WatchedDirectory, WatchLedger
from conveyor.settings import Settings, SettingsError
from conveyor.submission_client import IdempotencyConflict, SubmissionRefused, SubmissionUnavailable
from watcher.service import RETRY_SECONDS, WatcherService, eligible, idempotency_key

SETTLE = 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeGateway:
    """Creates real batch rows, one per key, as ``POST /api/v1/batches`` would."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.calls: list[tuple[str, str, str]] = []  # (client id, file name, key)
        self.during_submit: Callable[[], None] | None = None
        self.failures: list[Exception] = []

    def submit(self, client_id: str, files: list[Path], idempotency_key: str) -> str:
        (path,) = files
        self.calls.append((client_id, path.name, idempotency_key))
        if self.failures:
            raise self.failures.pop(0)
        if self.during_submit is not None:
            hook, self.during_submit = self.during_submit, None
            hook()
        job = NewJob("document", path.name, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)
        try:
            batch, _ = self.ledger.create_batch(client_id, 3, [job], idempotency_key, path.name)
        except DuplicateIdempotencyKey:
            batch = self.ledger.find_by_idempotency_key(client_id, idempotency_key)
            assert batch is not None
            if batch.request_fingerprint != path.name:
                raise IdempotencyConflict(409, "idempotency_conflict", "other files") from None
        return batch.id

    def close(self) -> None:
        pass

    def batches(self, client_id: str) -> list[str]:
        return [batch.id for batch in self.ledger.list_batches(client_id, None, 1000, None)]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings.from_env({"CONVEYOR_DATABASE_URL": database_url})


@pytest.fixture
def client_id(ledger: Ledger) -> str:
    return ledger.create_client(name="watch", tier="standard", scopes=["batches:write"], secret_hash="x").id


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    directory = tmp_path / "inbox"
    directory.mkdir()
    return directory


@pytest.fixture
def gateway(ledger: Ledger) -> FakeGateway:
    return FakeGateway(ledger)


@pytest.fixture
def make_service(settings: Settings, ledger: Ledger, gateway: FakeGateway) -> Iterator[Callable[..., WatcherService]]:
    started: list[WatcherService] = []

    def make(clock: Clock, settings_: Settings | None = None) -> WatcherService:
        service = WatcherService(settings_ or settings, ledger, gateway, clock)
        started.append(service)
        return service

    yield make
    for service in started:
        service.close()


def _settle(service: WatcherService, clock: Clock, rounds: int = 1) -> None:
    """Let filesystem events arrive, then pass the settle time."""
    for _ in range(rounds):
        time.sleep(0.6)
        service.tick()
        clock.now += SETTLE
        service.tick()


def _directory(**changes: object) -> WatchedDirectory:
    values = {
        "id": "d", "path": "/in", "client_id": "c", "recursive": False,
        "extensions": (".txt", ".tar.gz"), "settle_seconds": 2, "created_at": datetime.now(UTC),
    }
    return WatchedDirectory(**{**values, **changes})


@pytest.mark.parametrize(
    ("path", "recursive", "expected"),
    [
        ("/in/a.txt", False, True),
        ("/in/A.TXT", False, True),
        ("/in/b.tar.gz", False, True),
        ("/in/c.csv", False, False),
        ("/in/.hidden.txt", False, False),
        ("/in/d.txt.part", False, False),
        ("/in/e.txt~", False, False),
        ("/in/~$f.txt", False, False),
        ("/in/#g.txt#", False, False),
        ("/in/h.txt.tmp", False, False),
        ("/in/sub/i.txt", False, False),
        ("/in/sub/i.txt", True, True),
        ("/in/.git/j.txt", True, False),
        ("/elsewhere/k.txt", True, False),
        ("/in", True, False),
    ],
)
def test_which_names_are_submitted(path: str, recursive: bool, expected: bool) -> None:
    assert eligible(Path(path), _directory(recursive=recursive)) is expected


def test_settled_files_are_submitted_once_per_content(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path
) -> None:
    (inbox / "existing.txt").write_bytes(b"there before the watcher")
    directory = WatchLedger(ledger.engine).add_directory(str(inbox), client_id, False, [".txt"], SETTLE)
    clock = Clock()
    service = make_service(clock)
    service.tick()
    assert service.watched() == [directory]
    (inbox / "new.txt").write_bytes(b"new content")
    (inbox / "twin.txt").write_bytes(b"new content")
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / "other.csv").write_bytes(b"a,b")
    time.sleep(0.6)
    service.tick()
    assert gateway.calls == []  # nothing has settled yet
    clock.now += SETTLE
    service.tick()
    assert sorted(name for _, name, _ in gateway.calls) == ["existing.txt", "new.txt"]
    digest = hashlib.sha256(b"new content").hexdigest()
    assert (client_id, "new.txt", idempotency_key(directory.id, digest)) in gateway.calls

    (inbox / "later-copy.txt").write_bytes(b"new content")
    (inbox / "existing.txt").write_bytes(b"there before the watcher, and changed")
    _settle(service, clock)
    assert sorted(name for _, name, _ in gateway.calls) == ["existing.txt", "existing.txt", "new.txt"]
    assert len(gateway.batches(client_id)) == 3
    history = WatchLedger(ledger.engine).submitted_digests(directory.id, [digest])
    assert history == {digest}


def test_a_restarted_watcher_submits_nothing_again(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path
) -> None:
    WatchLedger(ledger.engine).add_directory(str(inbox), client_id, False, [".txt"], SETTLE)
    (inbox / "a.txt").write_bytes(b"alpha")
    clock = Clock()
    first = make_service(clock)
    _settle(first, clock)
    first.close()
    assert len(gateway.calls) == 1
    second = make_service(clock)
    _settle(second, clock)
    assert len(gateway.calls) == 1


def test_a_crash_between_submitting_and_recording_makes_no_second_batch(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path
) -> None:
    WatchLedger(ledger.engine).add_directory(str(inbox), client_id, False, [".txt"], SETTLE)
    (inbox / "a.txt").write_bytes(b"alpha")
    clock = Clock()
    service = make_service(clock)
    original = service.watching.record_submission
    service.watching.record_submission = lambda *args: (_ for _ in ()).throw(RuntimeError("ledger gone"))  # type: ignore[method-assign]
    time.sleep(0.6)
    service.tick()
    clock.now += SETTLE
    with pytest.raises(RuntimeError):
        service.tick()
    service.watching.record_submission = original  # type: ignore[method-assign]
    clock.now += RETRY_SECONDS
    service.tick()
    assert len(gateway.calls) == 2 and gateway.calls[0] == gateway.calls[1]
    assert len(gateway.batches(client_id)) == 1


def test_two_watchers_racing_on_one_file_make_one_batch(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path
) -> None:
    """The second watcher checks the history while the first is still submitting."""
    directory = WatchLedger(ledger.engine).add_directory(str(inbox), client_id, False, [".txt"], SETTLE)
    (inbox / "a.txt").write_bytes(b"shared content")
    (inbox / "a-copy.txt").write_bytes(b"shared content")
    clock = Clock()
    first, second = make_service(clock), make_service(clock)
    for service in (first, second):
        service.tick()
    clock.now += SETTLE
    gateway.during_submit = second.tick  # the second watcher's tick runs inside the first's submission
    first.tick()
    assert len(gateway.calls) == 2
    assert len(gateway.batches(client_id)) == 1
    digest = hashlib.sha256(b"shared content").hexdigest()
    assert WatchLedger(ledger.engine).submitted_digests(directory.id, [digest]) == {digest}


def test_the_same_content_under_another_name_from_a_racing_watcher_is_the_same_batch(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path
) -> None:
    directory = WatchLedger(ledger.engine).add_directory(str(inbox), client_id, False, [".txt"], SETTLE)
    digest = hashlib.sha256(b"shared content").hexdigest()
    other = inbox.parent / "a.txt"
    other.write_bytes(b"shared content")
    earlier = gateway.submit(client_id, [other], idempotency_key(directory.id, digest))  # a racing watcher's upload
    (inbox / "b.txt").write_bytes(b"shared content")
    clock = Clock()
    service = make_service(clock)
    _settle(service, clock)
    assert gateway.batches(client_id) == [earlier]
    assert WatchLedger(ledger.engine).submission(directory.id, digest) == (str(inbox / "b.txt"), earlier)


def test_refused_files_are_not_retried_and_unavailable_ones_are(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path
) -> None:
    WatchLedger(ledger.engine).add_directory(str(inbox), client_id, False, [".txt"], SETTLE)
    (inbox / "a.txt").write_bytes(b"refused content")
    gateway.failures = [SubmissionRefused(415, "unsupported_file_type", "no")]
    clock = Clock()
    service = make_service(clock)
    _settle(service, clock)
    clock.now += RETRY_SECONDS
    _settle(service, clock)
    assert len(gateway.calls) == 1

    (inbox / "b.txt").write_bytes(b"gateway down")
    gateway.failures = [SubmissionUnavailable("gave up")]
    _settle(service, clock)
    assert len(gateway.calls) == 2
    _settle(service, clock)
    assert len(gateway.calls) == 2  # held back for RETRY_SECONDS
    clock.now += RETRY_SECONDS
    service.tick()
    assert [name for _, name, _ in gateway.calls] == ["a.txt", "b.txt", "b.txt"]
    assert len(gateway.batches(client_id)) == 1


def test_recursive_directories_see_subfolders_moved_in(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path, tmp_path: Path
) -> None:
    WatchLedger(ledger.engine).add_directory(str(inbox), client_id, True, [".txt"], SETTLE)
    clock = Clock()
    service = make_service(clock)
    service.tick()
    staging = tmp_path / "staging"
    (staging / "deeper").mkdir(parents=True)
    (staging / "deeper" / "a.txt").write_bytes(b"moved in with its folder")
    (staging / ".cache").mkdir()
    (staging / ".cache" / "b.txt").write_bytes(b"hidden folder")
    staging.rename(inbox / "batch-7")
    _settle(service, clock)
    assert [name for _, name, _ in gateway.calls] == ["a.txt"]


def test_directories_added_and_removed_in_the_ledger_are_followed(
    make_service, ledger: Ledger, gateway: FakeGateway, client_id: str, inbox: Path, tmp_path: Path
) -> None:
    watching = WatchLedger(ledger.engine)
    clock = Clock()
    service = make_service(clock)
    service.tick()
    assert service.watched() == []
    missing = watching.add_directory(str(tmp_path / "later"), client_id, False, [".txt"], SETTLE)
    directory = watching.add_directory(str(inbox), client_id, False, [".txt"], SETTLE)
    clock.now += 2
    service.tick()
    assert service.watched() == [directory]
    (tmp_path / "later").mkdir()
    clock.now += 2
    service.tick()
    assert {watched.id for watched in service.watched()} == {directory.id, missing.id}
    watching.remove_directory(directory.id)
    clock.now += 2
    service.tick()
    assert [watched.id for watched in service.watched()] == [missing.id]
    (inbox / "ignored.txt").write_bytes(b"nobody watches this")
    _settle(service, clock)
    assert gateway.calls == []


def test_configured_directories_are_written_to_the_ledger(
    make_service, settings: Settings, ledger: Ledger, client_id: str, inbox: Path
) -> None:
    configured = Settings.from_env(
        {
            "CONVEYOR_DATABASE_URL": settings.database_url,
            "CONVEYOR_WATCH_DIRECTORIES": f"{inbox}/",
            "CONVEYOR_WATCH_CLIENT_ID": client_id,
            "CONVEYOR_WATCH_RECURSIVE": "true",
            "CONVEYOR_WATCH_EXTENSIONS": ".CSV,.txt",
            "CONVEYOR_WATCH_SETTLE_SECONDS": "4",
        }
    )
    service = make_service(Clock(), configured)
    (directory,) = service.configure()
    assert (directory.path, directory.client_id, directory.recursive, directory.extensions, directory.settle_seconds) == (
        str(inbox), client_id, True, (".csv", ".txt"), 4
    )
    assert service.configure() == [directory]  # again at the next start: the same row
    assert WatchLedger(ledger.engine).list_directories() == [directory]


@pytest.mark.parametrize("client", ["", "cl_nobody"])
def test_configured_directories_need_a_known_client(make_service, settings: Settings, inbox: Path, client: str) -> None:
    configured = Settings.from_env(
        {"CONVEYOR_DATABASE_URL": settings.database_url, "CONVEYOR_WATCH_DIRECTORIES": str(inbox), "CONVEYOR_WATCH_CLIENT_ID": client}
    )
    with pytest.raises(SettingsError, match="CONVEYOR_WATCH_CLIENT_ID"):
        make_service(Clock(), configured).configure()
