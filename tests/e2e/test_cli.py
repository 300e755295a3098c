"""``conveyor`` against a running gateway and worker, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.settings import Settings
from conveyor.tiers import Tiers

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def conveyor(tmp_path: Path, service_environment: dict[str, str]):
    """``conveyor(*arguments)`` → the finished process (its own profiles file)."""
    environment = {**service_environment, "CONVEYOR_CLI_CONFIG": str(tmp_path / "cli" / "profiles.json"), "COLUMNS": "200"}

    def run(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *arguments], capture_output=True, text=True, env=environment,
            cwd=REPOSITORY, timeout=timeout,
        )

    return run


def login(conveyor, gateway, credential, profile: str = "default") -> None:
    completed = conveyor(
        "--profile", profile, "login", "--url", gateway.url, "--client-id", credential.client.id,
        "--client-secret", credential.secret,
    )
    assert completed.returncode == 0, completed.stderr


def test_submit_a_folder_watch_it_finish_and_download_its_report(
    conveyor, start_gateway, start_worker, make_client, tmp_path: Path
) -> None:
    gateway = start_gateway()
    start_worker()
    login(conveyor, gateway, make_client())
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text("one two three")
    (folder / "sub" / "two.md").write_text("# two\n\nfour five")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")

    submitted = conveyor("--json", "submit", str(folder), "--idempotency-key", "cli-test-1")
    assert submitted.returncode == 0, submitted.stderr
    batch = json.loads(submitted.stdout)
    assert (batch["status"], batch["counts"]["total"], batch["counts"]["succeeded"]) == ("COMPLETED", 2, 2)
    assert f"batch {batch['id']} accepted (2 jobs)" in submitted.stderr

    again = conveyor("--json", "submit", str(folder), "--idempotency-key", "cli-test-1", "--no-wait")
    assert json.loads(again.stdout)["id"] == batch["id"], "the same key returns the first batch"

    results = json.loads(conveyor("--json", "results", batch["id"]).stdout)
    assert sorted((job["filename"], job["result"]["word_count"]) for job in results) == [("one.txt", 3), ("two.md", 4)]
    report_file = tmp_path / "report.csv"
    reported = conveyor("report", batch["id"], "--format", "csv", "-o", str(report_file))
    assert reported.returncode == 0, reported.stderr
    rows = list(csv.DictReader(io.StringIO(report_file.read_text())))
    assert sorted(row["filename"] for row in rows) == ["one.txt", "two.md"]
    listed = conveyor("list")
    assert batch["id"] in listed.stdout and "COMPLETED" in listed.stdout
    assert "2 succeeded" in conveyor("status", batch["id"]).stdout


def test_a_batch_that_does_not_complete_exits_3_and_api_errors_exit_1(
    conveyor, start_gateway, start_worker, make_client, tmp_path: Path
) -> None:
    gateway = start_gateway()
    start_worker()
    login(conveyor, gateway, make_client())
    (tmp_path / "broken.json").write_text('{"unterminated": ')
    (tmp_path / "fine.txt").write_text("fine")
    ended = conveyor("--json", "submit", str(tmp_path / "broken.json"), str(tmp_path / "fine.txt"))
    assert ended.returncode == 3
    assert json.loads(ended.stdout)["status"] == "PARTIALLY_COMPLETED"

    missing = conveyor("status", "no-such-batch")
    assert missing.returncode == 1
    assert "404 not_found" in missing.stderr
    nothing = conveyor("submit", str(tmp_path / "*.pdf"))
    assert nothing.returncode == 2 and "no such file" in nothing.stderr


def test_tier_limits_are_checked_before_uploading_and_split_on_request(
    conveyor, start_gateway, start_worker, make_client, make_tiers_file, tmp_path: Path
) -> None:
    gateway = start_gateway(CONVEYOR_TIERS_FILE=str(make_tiers_file(max_files_per_batch=2, max_file_bytes=1000)))
    start_worker()
    login(conveyor, gateway, make_client())
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(5):
        (folder / f"doc-{number}.txt").write_text(f"document number {number}")
    refused = conveyor("submit", str(folder))
    assert refused.returncode == 2 and "takes 2 per batch: pass --split" in refused.stderr
    split = conveyor("--json", "submit", "--split", str(folder), "--idempotency-key", "many")
    assert split.returncode == 0, split.stderr
    batches = json.loads(split.stdout)
    assert [batch["counts"]["total"] for batch in batches] == [2, 2, 1]
    assert {batch["status"] for batch in batches} == {"COMPLETED"}

    (tmp_path / "big.txt").write_text("x" * 1001)
    too_big = conveyor("submit", str(tmp_path / "big.txt"))
    assert too_big.returncode == 2 and "1000 bytes per file" in too_big.stderr and "big.txt" in too_big.stderr


def test_login_problems_and_an_unreachable_gateway_have_their_own_exit_codes(conveyor, start_gateway, make_client, free_port) -> None:
    gateway = start_gateway()
    assert conveyor("--profile", "nobody", "list").returncode == 5
    refused = conveyor("login", "--url", gateway.url, "--client-id", "cl_nobody", "--client-secret", "wrong")
    assert refused.returncode == 5 and "401" in refused.stderr

    credential = make_client()
    away = conveyor("login", "--url", f"http://127.0.0.1:{free_port()}", "--client-id", credential.client.id, "--client-secret", credential.secret)
    assert away.returncode == 4 and "unreachable" in away.stderr


def test_rate_limits_are_waited_out_with_a_message(conveyor, start_gateway, make_client, make_tiers_file, tmp_path: Path) -> None:
    gateway = start_gateway(CONVEYOR_TIERS_FILE=str(make_tiers_file(read_rate="1 per 2 seconds")))
    login(conveyor, gateway, make_client())
    (tmp_path / "a.txt").write_text("rate limited reads")
    batch_id = json.loads(conveyor("--json", "submit", "--no-wait", str(tmp_path / "a.txt")).stdout)["id"]
    # Three reads within 2 s: two fall in one window, so one is limited and waits.
    statuses = [conveyor("status", batch_id) for _ in range(3)]
    assert [status.returncode for status in statuses] == [0, 0, 0]
    assert any("rate limited" in status.stderr and "waiting" in status.stderr for status in statuses)


def test_operator_commands_share_the_platform_tools_and_the_admin_api(
    conveyor, start_gateway, start_worker, service_settings: Settings
) -> None:
    gateway = start_gateway()
    start_worker()
    engine = create_ledger_engine(service_settings.database_url)
    operator = register_client(
        Ledger(engine), Tiers.load(service_settings.tiers_file, service_settings.max_priority), "ops", "enterprise", ["admin"]
    )
    engine.dispose()
    login(conveyor, gateway, operator, profile="ops")
    listed = conveyor("tokens", "--json", "list")
    assert listed.returncode == 0, listed.stderr
    clients = json.loads(listed.stdout)
    assert "ops" in json.dumps(clients)
    queues = json.loads(conveyor("--profile", "ops", "--json", "queues").stdout)
    consumers = {row["queue"]: row["consumers"] for row in queues}
    assert {"documents", "documents.DQ", "documents.XQ"} <= set(consumers)
    assert consumers["documents"] >= 1, "the running worker consumes the documents queue"
    workers = conveyor("--profile", "ops", "workers")
    assert workers.returncode == 0 and "live workers" in workers.stdout
