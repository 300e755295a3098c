"""Rate limits: every route limited, per client and tier, standard headers,
counters shared through Redis across replicas."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from conveyor.settings import Settings
from gateway.app import ROUTE_TABLE, create_app
from gateway.rate_limits import client_address

TIGHT = "2/minute"


@pytest.fixture
def tight_settings(service_environment: dict[str, str], make_tiers_file, service_settings: Settings) -> Settings:
    tiers = make_tiers_file(upload_rate=TIGHT, read_rate=TIGHT, unauthenticated_rate=TIGHT)
    return Settings.from_env({**service_environment, "CONVEYOR_TIERS_FILE": str(tiers)})


@pytest.fixture
def tight_api(tight_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(tight_settings)) as client:
        yield client


def bearer_for(api: TestClient, credential) -> dict[str, str]:
    # Tokens are minted directly: the token endpoint has its own (tight) limit under test.
    token = api.app.state.services.tokens.issue(credential.client).token
    return {"Authorization": f"Bearer {token}"}


def _call(api: TestClient, method: str, path: str, headers: dict[str, str]):
    concrete = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
    if method == "POST" and path == "/api/v1/auth/token":
        return api.post(concrete, data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"})
    if method == "POST":
        return api.post(concrete, headers=headers, files={"files": ("a.txt", b"x")})
    return api.request(method, concrete, headers=headers)


@pytest.mark.parametrize(("path", "method"), [(path, method) for path, method, _, _ in ROUTE_TABLE])
def test_every_route_is_rate_limited(tight_api: TestClient, make_client, path: str, method: str) -> None:
    headers = bearer_for(tight_api, make_client())
    statuses = [_call(tight_api, method, path, headers).status_code for _ in range(3)]
    assert 429 not in statuses[:2], statuses
    assert statuses[2] == 429


def test_limit_headers_on_success_and_on_429(tight_api: TestClient, make_client) -> None:
    headers = bearer_for(tight_api, make_client())
    upload = tight_api.post("/api/v1/batches", headers=headers, files={"files": ("a.txt", b"x")})
    batch_path = upload.headers["location"]
    first = tight_api.get(batch_path, headers=headers)
    assert first.status_code == 200
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("2", "1")
    assert 0 < int(first.headers["x-ratelimit-reset"]) - time.time() <= 62  # epoch seconds, a minute window ahead
    second = tight_api.get(batch_path, headers=headers)
    assert second.headers["x-ratelimit-remaining"] == "0"
    refused = tight_api.get(batch_path, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert "2 per 1 minute" in refused.json()["detail"]
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-limit"] == "2"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"].isdigit()


def test_limits_are_per_client_and_follow_the_tier(
    service_environment: dict[str, str], make_tiers_file, make_client, service_settings: Settings
) -> None:
    tiers = make_tiers_file(read_rate=TIGHT)
    settings = Settings.from_env({**service_environment, "CONVEYOR_TIERS_FILE": str(tiers)})
    with TestClient(create_app(settings)) as api:
        first, second = bearer_for(api, make_client()), bearer_for(api, make_client())
        path = "/api/v1/batches/00000000-0000-0000-0000-000000000000"
        assert [api.get(path, headers=first).status_code for _ in range(3)] == [404, 404, 429]
        assert api.get(path, headers=second).status_code == 404  # its own counter
        # reads and uploads are separate classes
        assert api.post("/api/v1/batches", headers=first, files={"files": ("a.txt", b"x")}).status_code == 202


def test_shipped_tiers_give_each_tier_its_own_rate(service_environment: dict[str, str], make_client, service_settings) -> None:
    shipped = {name: value for name, value in service_environment.items() if name != "CONVEYOR_TIERS_FILE"}
    with TestClient(create_app(Settings.from_env(shipped))) as api:
        free, standard = bearer_for(api, make_client(tier="free")), bearer_for(api, make_client(tier="standard"))
        path = "/api/v1/batches/00000000-0000-0000-0000-000000000000"
        assert api.get(path, headers=free).headers.get("x-ratelimit-limit") is None  # a 404 is an error response
        responses = [api.post("/api/v1/batches", headers=free, files={"files": ("a.txt", b"x")}) for _ in range(4)]
        assert [r.status_code for r in responses] == [202, 202, 202, 429]
        assert responses[0].headers["x-ratelimit-limit"] == "3"
        accepted = api.post("/api/v1/batches", headers=standard, files={"files": ("a.txt", b"x")})
        assert accepted.headers["x-ratelimit-limit"] == "10"


def test_a_large_upload_costs_more(
    service_environment: dict[str, str], make_tiers_file, make_client, service_settings: Settings
) -> None:
    tiers = make_tiers_file(upload_rate="3/minute")
    settings = Settings.from_env({**service_environment, "CONVEYOR_TIERS_FILE": str(tiers)})
    with TestClient(create_app(settings)) as api:
        headers = bearer_for(api, make_client())
        large = api.post("/api/v1/batches", headers=headers, files={"files": ("big.txt", b"x" * (11 * 1024 * 1024))})
        assert large.status_code == 202
        assert large.headers["x-ratelimit-remaining"] == "1"  # 1 + 1 per full 10 MiB
        small = api.post("/api/v1/batches", headers=headers, files={"files": ("a.txt", b"x")})
        assert small.status_code == 202
        assert api.post("/api/v1/batches", headers=headers, files={"files": ("a.txt", b"x")}).status_code == 429


def test_replicas_sharing_redis_share_the_limit(
    service_environment: dict[str, str], make_tiers_file, make_client, service_settings: Settings
) -> None:
    tiers = make_tiers_file(read_rate="5/minute")
    shared = Settings.from_env(
        {**service_environment, "CONVEYOR_TIERS_FILE": str(tiers), "CONVEYOR_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0"}
    )
    with TestClient(create_app(shared)) as one, TestClient(create_app(shared)) as two:
        credential = make_client()
        headers = bearer_for(one, credential)
        path = "/api/v1/batches/00000000-0000-0000-0000-000000000000"
        statuses = [(one if i % 2 else two).get(path, headers=headers).status_code for i in range(9)]
    assert statuses.count(404) == 5
    assert statuses.count(429) == 4


def _request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "address"),
    [
        ("203.0.113.9", None, "", "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "", "203.0.113.9"),  # nobody trusted: the header is ignored
        ("127.0.0.1", "198.51.100.1", "127.0.0.1", "198.51.100.1"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "127.0.0.1", "198.51.100.1"),  # a forged first hop is ignored
        ("127.0.0.1", "198.51.100.1, 10.0.0.5", "127.0.0.1,10.0.0.0/8", "198.51.100.1"),
        ("203.0.113.9", "198.51.100.1", "127.0.0.1", "203.0.113.9"),  # untrusted peer cannot forward
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(peer, forwarded, trusted, address) -> None:
    proxies = Settings.from_env({"CONVEYOR_TRUSTED_PROXIES": trusted}).trusted_proxies
    assert client_address(_request(peer, forwarded), proxies) == address
