"""Schemathesis against a running gateway: generated requests for every
operation in the OpenAPI description, with a high-tier admin token; no 5xx
and no response outside the description.

Runs schemathesis's CLI (its pytest plugin does not support pytest 9).  The
"schema-valid request rejected" check is left out on purpose: some refusals
depend on content no schema can express (a PNG uploaded as a document is a
415, an opaque cursor that this API never issued is a 400)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.settings import Settings
from conveyor.tiers import Tiers

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_api_conforms_to_its_description(gateway, service_settings: Settings, tmp_path: Path) -> None:
    engine = create_ledger_engine(service_settings.database_url)
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    operator = register_client(Ledger(engine), tiers, "fuzzer", "enterprise", ["batches:read", "batches:write", "admin"])
    engine.dispose()
    token = gateway.token(operator)
    completed = subprocess.run(
        [
            str(SCHEMATHESIS), "run", f"{gateway.url}/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", "25",
            "--seed", "1",
            "--checks", "all",
            "--exclude-checks", "positive_data_acceptance",
            "--generation-database", "none",
        ],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
