"""The operator executables, run as an operator runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
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


def test_token_admin_commands(service_environment: dict[str, str], service_settings) -> None:
    def tool(*arguments: str) -> dict:
        completed = run("tokens.py", *arguments, "--json", environment=service_environment)
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout)

    issued = tool("issue", "--name", "acme", "--tier", "free")
    client_id, first_secret = issued["client_id"], issued["client_secret"]
    listed = tool("list")["clients"]
    assert [client["client_id"] for client in listed] == [client_id]
    assert "client_secret" not in listed[0]

    engine = create_ledger_engine(service_settings.database_url)
    ledger = Ledger(engine)
    assert tool("set-tier", "--client", client_id, "--tier", "premium")["tier"] == "premium"
    assert ledger.get_client(client_id).tokens_revoked_before is not None

    rotated = tool("rotate-secret", "--client", client_id)
    assert rotated["client_secret"] != first_secret
    assert authenticate_client(ledger, client_id, first_secret) is None
    assert authenticate_client(ledger, client_id, rotated["client_secret"]) is not None

    assert tool("revoke", "--jti", "abc") == {"revoked": {"jti": "abc"}}
    assert "abc" in ledger.revocations().token_ids
    assert tool("revoke", "--client", client_id) == {"revoked": {"client_id": client_id}}

    before = {key.kid for key in ledger.signing_keys(retired_since=datetime.now(UTC))}
    new_kid = tool("rotate-key")["kid"]
    assert new_kid not in before
    assert ledger.signing_keys(retired_since=datetime.now(UTC))[0].kid == new_kid

    assert tool("disable", "--client", client_id)["disabled_at"] is not None
    assert authenticate_client(ledger, client_id, rotated["client_secret"]) is None
    engine.dispose()


def test_token_admin_reports_unknown_clients(service_environment: dict[str, str], service_settings) -> None:
    completed = run("tokens.py", "set-tier", "--client", "cl_nobody", "--tier", "free", environment=service_environment)
    assert completed.returncode == 1
    assert completed.stderr.strip() == "error: no client cl_nobody"
