"""The operator executables, run as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conveyor.credentials import authenticate_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import head_revision

PLATFORM = Path(__file__).resolve().parents[2] / "platform"


def run(tool: str, *arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PLATFORM / tool), *arguments], env=environment, capture_output=True, text=True, timeout=60
    )


def test_ledger_migrate_then_status(tmp_path: Path, service_environment: dict[str, str]) -> None:
    environment = {**service_environment, "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    before = run("ledger.py", "status", environment=environment)
    assert before.returncode == 1
    assert "database revision: none" in before.stdout
    migrated = run("ledger.py", "migrate", environment=environment)
    assert migrated.returncode == 0, migrated.stderr
    head = head_revision()
    assert f"database revision: {head}; code revision: {head}" in migrated.stdout


def test_tokens_issue_prints_a_credential_that_authenticates(
    service_environment: dict[str, str], service_settings
) -> None:
    issued = run("tokens.py", "issue", "--name", "acme", "--tier", "premium", "--json", environment=service_environment)
    assert issued.returncode == 0, issued.stderr
    credential = json.loads(issued.stdout)
    assert (credential["name"], credential["tier"]) == ("acme", "premium")
    assert credential["scopes"] == ["batches:write", "batches:read"]
    engine = create_ledger_engine(service_settings.database_url)
    ledger = Ledger(engine)
    client = authenticate_client(ledger, credential["client_id"], credential["client_secret"])
    assert client is not None and client.tier == "premium"
    assert credential["client_secret"] not in ledger.get_client(client.id).secret_hash
    engine.dispose()


def test_tokens_issue_rejects_an_unknown_tier(service_environment: dict[str, str], service_settings) -> None:
    issued = run("tokens.py", "issue", "--name", "acme", "--tier", "gold", environment=service_environment)
    assert issued.returncode == 1
    assert "unknown tier 'gold' (known: free, standard, premium, enterprise)" in issued.stderr
    assert issued.stdout == ""


def test_tools_refuse_an_unmigrated_ledger(tmp_path: Path, service_environment: dict[str, str]) -> None:
    environment = {**service_environment, "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    issued = run("tokens.py", "issue", "--name", "acme", "--tier", "free", environment=environment)
    assert issued.returncode == 1
    assert "platform/ledger.py migrate" in issued.stderr
