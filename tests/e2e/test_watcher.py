"""The directory watcher as operators run it (``python -m watcher``) against a real
gateway and worker: a directory added through the admin API is watched within
seconds, files are submitted once settled, filtered by name, never twice for
the same content (even with a second watcher started by mistake), and a
removed directory is ignored."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.watching import WatchLedger
from conveyor.processes import ManagedProcess, start_process, watcher_command
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from process_waits import wait_for

SETTLE_SECONDS = 2
ROUTE = "/api/v1/admin/watched-directories"


def _log(process: ManagedProcess) -> str:
    return process.log_path.read_text(errors="replace") if process.log_path.exists() else ""


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_the_watcher_submits_settled_files_once_and_follows_the_admin_api(
    gateway, start_worker, service_environment: dict[str, str], service_settings: Settings, tmp_path: Path, make_client
) -> None:
    engine = create_ledger_engine(service_settings.database_url)
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    operator = register_client(Ledger(engine), tiers, "operator", "enterprise", ["admin", "batches:read"])
    uploader = make_client(tier="premium")
    admin = {"Authorization": f"Bearer {gateway.token(operator)}"}
    token = gateway.token(uploader)
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    def batches() -> list[dict]:
        return gateway.get(token, "/api/v1/batches?limit=100")["batches"]

    def jobs_by_sha() -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for batch in batches():
            for job in gateway.jobs(token, batch["id"]):
                found.setdefault(job["sha256"], []).append(job)
        return found

    environment = {**service_environment, "CONVEYOR_GATEWAY_URL": gateway.url}
    processes: list[ManagedProcess] = []

    def start_watcher() -> ManagedProcess:
        process = start_process(
            f"watcher-{len(processes)}", watcher_command(), environment, tmp_path / f"watcher-{len(processes)}.log", tmp_path
        )
        processes.append(process)
        return process

    try:
        start_worker()
        first = start_watcher()
        wait_for(lambda: "watcher started" in _log(first), 30, "the watcher starting", processes)

        created = httpx.post(
            f"{gateway.url}{ROUTE}",
            headers=admin,
            json={
                "path": str(inbox),
                "client_id": uploader.client.id,
                "extensions": [".txt", ".csv", ".md"],
                "settle_seconds": SETTLE_SECONDS,
            },
        )
        assert created.status_code == 201, created.text
        directory = created.json()
        wait_for(lambda: f"watching {inbox}" in _log(first), 15, "the watcher picking the directory up", processes)

        # A file written in two parts, less than the settle time apart, is submitted once, whole.
        slow_first, slow_second = b"the first half of a slow report. " * 200, b"and its second half. " * 200
        with open(inbox / "slow.txt", "wb") as slow:
            slow.write(slow_first)
            slow.flush()
            time.sleep(SETTLE_SECONDS * 0.6)
            assert batches() == [], "submitted before it settled"
            slow.write(slow_second)
        contents = {
            "report.txt": b"quarterly report: revenue went up",
            "table.csv": b"name,value\nalpha,1\nbeta,2\n",
            "notes.md": b"# notes\n\nsome notes",
            "SHOUT.TXT": b"UPPER CASE EXTENSIONS COUNT TOO",
            "twin-a.txt": b"two files with one content",
            "twin-b.txt": b"two files with one content",
        }
        ignored = {
            "picture.png": b"not on the extension list",
            ".hidden.txt": b"a dotfile",
            "download.txt.part": b"still downloading",
            "draft.txt~": b"an editor backup",
        }
        for name, content in {**contents, **ignored}.items():
            (inbox / name).write_bytes(content)
        expected = {_sha256(slow_first + slow_second)} | {_sha256(content) for content in contents.values()}
        wait_for(lambda: len(batches()) >= len(expected), 60, f"{len(expected)} batches", processes)
        for batch in batches():
            assert gateway.wait_for_batch(token, batch["id"])["status"] == "COMPLETED"

        # A copy of content already submitted is not submitted again.
        (inbox / "copy-of-report.txt").write_bytes(contents["report.txt"])
        wait_for(lambda: "copy-of-report.txt: content" in _log(first), 30, "the copy being skipped", processes)

        # A second watcher started by mistake rescans everything and races the first on new files.
        second = start_watcher()
        wait_for(lambda: f"watching {inbox}" in _log(second), 30, "the second watcher starting", processes)
        late = {f"late-{number}.txt": f"file {number}, seen by both watchers".encode() for number in range(24)}
        late["late-copy.txt"] = late["late-0.txt"]  # same content, other name: same key, so 409 for the loser
        for name, content in late.items():
            (inbox / name).write_bytes(content)
        expected |= {_sha256(content) for content in late.values()}
        wait_for(lambda: len(batches()) >= len(expected), 60, "the late files' batches", processes)
        time.sleep(SETTLE_SECONDS + 3)  # time for any duplicate to show up

        found = jobs_by_sha()
        assert set(found) == expected
        assert all(len(jobs) == 1 for jobs in found.values()), found
        assert len(batches()) == len(expected)
        slow_job = found[_sha256(slow_first + slow_second)][0]
        assert (slow_job["filename"], slow_job["size_bytes"]) == ("slow.txt", len(slow_first + slow_second))
        names = {job["filename"] for jobs in found.values() for job in jobs}
        assert names.isdisjoint(ignored) and "copy-of-report.txt" not in names
        assert len(names & {"twin-a.txt", "twin-b.txt"}) == 1 and len(names & {"late-0.txt", "late-copy.txt"}) == 1
        for batch in batches():
            finished = gateway.wait_for_batch(token, batch["id"])
            assert (finished["status"], finished["counts"]["total"]) == ("COMPLETED", 1)
        history = WatchLedger(engine).submitted_digests(directory["id"], expected)
        assert history == expected

        # Removed through the API: both watchers let go, and new files are left alone.
        assert httpx.delete(f"{gateway.url}{ROUTE}/{directory['id']}", headers=admin).status_code == 204
        for process in (first, second):
            wait_for(lambda: f"stopped watching {inbox}" in _log(process), 15, "the watchers letting go", processes)
        (inbox / "after-removal.txt").write_bytes(b"nobody watches this any more")
        time.sleep(SETTLE_SECONDS + 3)
        assert len(batches()) == len(expected)

        for process in (first, second):
            process.stop(timeout=15)
            assert not process.is_running()
            assert "watcher stopped" in _log(process), process.log_tail()
    finally:
        for process in processes:
            process.stop(timeout=5)
        engine.dispose()
