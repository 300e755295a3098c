"""Two gateway processes sharing Redis and the ledger behave as one API."""

from __future__ import annotations

import time

import httpx
from jose import jwt

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.settings import Settings
from conveyor.tiers import Tiers

READ_LIMIT = 10


def test_a_tier_limit_holds_exactly_across_replicas(start_gateway, make_client, make_tiers_file) -> None:
    shared = {
        "CONVEYOR_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0",
        "CONVEYOR_TIERS_FILE": str(make_tiers_file(read_rate=f"{READ_LIMIT}/minute")),
    }
    replicas = [start_gateway(**shared), start_gateway(**shared)]
    token = replicas[0].token(make_client())
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [httpx.get(f"{replicas[i % 2].url}/api/v1/batches", headers=headers).status_code for i in range(3 * READ_LIMIT)]
    assert statuses.count(200) == READ_LIMIT
    assert statuses.count(429) == 2 * READ_LIMIT
    assert set(statuses[:READ_LIMIT]) == {200}


def test_a_revoked_token_is_refused_by_every_replica(start_gateway, make_client, service_settings: Settings) -> None:
    replicas = [start_gateway(), start_gateway()]
    engine = create_ledger_engine(service_settings.database_url)
    operator = register_client(
        Ledger(engine), Tiers.load(service_settings.tiers_file, service_settings.max_priority), "ops", "enterprise", ["admin"]
    )
    engine.dispose()
    admin = {"Authorization": f"Bearer {replicas[1].token(operator)}"}
    user = {"Authorization": f"Bearer {replicas[0].token(make_client())}"}
    for replica in replicas:
        assert httpx.get(f"{replica.url}/api/v1/batches", headers=user).status_code == 200

    jti = jwt.get_unverified_claims(user["Authorization"].split()[1])["jti"]
    assert httpx.post(f"{replicas[1].url}/api/v1/admin/tokens/revoke", headers=admin, json={"jti": jti}).status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        statuses = [httpx.get(f"{replica.url}/api/v1/batches", headers=user).status_code for replica in replicas]
        if statuses == [401, 401]:
            break
        time.sleep(0.1)
    assert statuses == [401, 401]
