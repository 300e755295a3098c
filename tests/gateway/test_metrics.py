"""The gateway's Prometheus metrics, read the way Prometheus reads them: from
the replica's metrics path, after real requests on a real RabbitMQ vhost.

Request counters live in the process-wide registry, so every assertion on
them is about the change a test's own requests make."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from conveyor.settings import Settings, SettingsError
from gateway.app import create_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: TestClient, path: str = "/metrics") -> Samples:
    response = api.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def bearer(api: TestClient, credential) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.app.state.services.tokens.issue(credential.client).token}"}


def upload(api: TestClient, headers: dict[str, str], files: dict[str, bytes]):
    return api.post("/api/v1/batches", headers=headers, files=[("files", (name, data)) for name, data in files.items()])


def app_with(service_environment: dict[str, str], **overrides: str) -> TestClient:
    return TestClient(create_app(Settings.from_env({**service_environment, **overrides})))


def test_requests_are_counted_by_route_template_method_and_status(api: TestClient, make_client) -> None:
    headers = bearer(api, make_client())
    template = "/api/v1/batches/{batch_id}"
    before = scrape(api)
    for _ in range(3):
        assert api.get("/api/v1/batches/no-such-batch", headers=headers).status_code == 404
    assert api.get("/no/such/route").status_code == 404
    assert api.put("/api/v1/batches").status_code == 405
    assert api.request("BREW", "/no/such/route").status_code == 404
    after = scrape(api)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("conveyor_gateway_requests_total", route=template, method="GET", status="404") == 3
    assert grew("conveyor_gateway_request_duration_seconds_count", route=template, method="GET") == 3
    assert grew("conveyor_gateway_requests_total", route="unmatched", method="GET", status="404") == 1
    assert grew("conveyor_gateway_requests_total", route="/api/v1/batches", method="PUT", status="405") == 1
    assert grew("conveyor_gateway_requests_total", route="unmatched", method="OTHER", status="404") == 1
    assert not any(dict(labels).get("method") == "BREW" for _, labels in after), "unknown methods share one label"
    assert not any("no-such-batch" in dict(labels).get("route", "") for _, labels in after), "raw paths never become labels"
    assert value(after, "conveyor_gateway_requests_in_flight") == 1  # the scrape itself


def test_accepted_uploads_and_published_jobs_are_counted_by_tier(api: TestClient, make_client) -> None:
    headers = bearer(api, make_client(tier="premium"))
    before = scrape(api)
    assert upload(api, headers, {"a.txt": b"12345", "b.txt": b"1234567890"}).status_code == 202
    assert upload(api, headers, {"empty.txt": b""}).status_code == 400  # refused: counts nothing
    after = scrape(api)
    for name, expected in [("upload_files", 2), ("upload_bytes", 15)]:
        metric = f"conveyor_gateway_{name}_total"
        assert value(after, metric, tier="premium") - value(before, metric, tier="premium") == expected
    published = "conveyor_gateway_jobs_published_total"
    labels = {"queue": "documents", "tier": "premium"}
    assert value(after, published, **labels) - value(before, published, **labels) == 2


def test_auth_failures_are_counted_by_reason(api: TestClient, make_client) -> None:
    client = make_client()
    before = scrape(api)
    assert api.get("/api/v1/batches").status_code == 401
    assert api.get("/api/v1/batches", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    refused = api.post(
        "/api/v1/auth/token", data={"grant_type": "client_credentials", "client_id": client.client.id, "client_secret": "wrong"}
    )
    assert refused.status_code == 401
    assert api.get("/api/v1/admin/clients", headers=bearer(api, client)).status_code == 403
    after = scrape(api)
    grown = {
        reason: value(after, "conveyor_gateway_auth_failures_total", reason=reason)
        - value(before, "conveyor_gateway_auth_failures_total", reason=reason)
        for reason in ("missing_token", "invalid_token", "invalid_client", "insufficient_scope", "expired_token")
    }
    assert grown == {"missing_token": 1, "invalid_token": 1, "invalid_client": 1, "insufficient_scope": 1, "expired_token": 0}
    assert ("conveyor_gateway_auth_failures_total", frozenset({("reason", "revoked_token")})) in after, "known reasons exist at 0"


def test_rate_limited_requests_are_counted_by_tier(service_environment: dict[str, str], make_client, make_tiers_file) -> None:
    tiers = make_tiers_file(read_rate="2/minute", unauthenticated_rate="2/minute")
    with app_with(service_environment, CONVEYOR_TIERS_FILE=str(tiers)) as api:
        headers = bearer(api, make_client(tier="standard"))
        before = scrape(api)
        assert [api.get("/api/v1/batches", headers=headers).status_code for _ in range(3)] == [200, 200, 429]
        token_request = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
        assert [api.post("/api/v1/auth/token", data=token_request).status_code for _ in range(3)] == [401, 401, 429]
        after = scrape(api)
    for tier in ("standard", "unauthenticated"):
        metric = "conveyor_gateway_rate_limited_total"
        assert value(after, metric, tier=tier) - value(before, metric, tier=tier) == 1, tier


def test_backpressure_rejections_are_counted_by_reason(
    service_environment: dict[str, str], make_client, make_tiers_file, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.publisher.DEPTH_CACHE_SECONDS", 0.0)
    metric = "conveyor_gateway_backpressure_rejections_total"
    quota = make_tiers_file(max_pending_jobs=2)
    with app_with(service_environment, CONVEYOR_TIERS_FILE=str(quota), CONVEYOR_MAX_READY_MESSAGES="2") as api:
        before = scrape(api)
        first, second = bearer(api, make_client()), bearer(api, make_client())
        assert upload(api, first, {"1.txt": b"1", "2.txt": b"2", "3.txt": b"3"}).json()["error"] == "quota_exceeded"
        assert upload(api, first, {"1.txt": b"1", "2.txt": b"2"}).status_code == 202
        assert upload(api, second, {"3.txt": b"3"}).status_code == 202  # the queue now holds 3 > 2
        assert upload(api, second, {"4.txt": b"4"}).json()["error"] == "backlog_full"
        after = scrape(api)
    unreachable = "amqp://guest:guest@127.0.0.1:1/%2F"
    with app_with(service_environment, CONVEYOR_BROKER_URL=unreachable) as api:
        assert upload(api, bearer(api, make_client()), {"a.txt": b"a"}).json()["error"] == "broker_unavailable"
        unavailable = scrape(api)
    assert value(after, metric, reason="quota_exceeded") - value(before, metric, reason="quota_exceeded") == 1
    assert value(after, metric, reason="backlog_full") - value(before, metric, reason="backlog_full") == 1
    assert value(unavailable, metric, reason="broker_unavailable") - value(after, metric, reason="broker_unavailable") == 1


def test_the_metrics_path_is_configurable_and_never_an_api_route(
    service_environment: dict[str, str], service_settings: Settings
) -> None:
    with app_with(service_environment, CONVEYOR_METRICS_PATH="/internal/metrics") as api:
        assert value(scrape(api, "/internal/metrics"), "conveyor_gateway_requests_in_flight") == 1
        assert api.get("/metrics").status_code == 404
    with pytest.raises(SettingsError, match="CONVEYOR_METRICS_PATH: /api/v1/health is an API route"):
        create_app(Settings.from_env({**service_environment, "CONVEYOR_METRICS_PATH": "/api/v1/health"}))


@pytest.fixture
def backlog_api(service_environment: dict[str, str], service_settings: Settings) -> Iterator[TestClient]:
    """A gateway that reads the ledger's figures at most once an hour."""
    with app_with(service_environment, CONVEYOR_BUSINESS_METRICS_SECONDS="3600") as api:
        yield api


def test_backlog_gauges_come_from_the_ledger_once_per_refresh_and_survive_its_failure(
    backlog_api: TestClient, make_client, service_environment: dict[str, str], service_settings: Settings
) -> None:
    empty = scrape(backlog_api)
    assert value(empty, "conveyor_backlog_jobs", tier="standard") == 0
    assert value(empty, "conveyor_oldest_pending_job_age_seconds", queue="documents") == 0
    refreshed_at = value(empty, "conveyor_business_metrics_last_success_timestamp_seconds")
    assert refreshed_at > 0

    assert upload(backlog_api, bearer(backlog_api, make_client(tier="standard")), {"a.txt": b"a", "b.txt": b"b"}).status_code == 202
    cached = scrape(backlog_api)
    assert value(cached, "conveyor_backlog_jobs", tier="standard") == 0, "read again before the refresh period"

    with app_with(service_environment, CONVEYOR_BUSINESS_METRICS_SECONDS="1") as fresh_api:
        fresh = scrape(fresh_api)
        assert value(fresh, "conveyor_backlog_jobs", tier="standard") == 2
        assert value(fresh, "conveyor_backlog_jobs", tier="premium") == 0
        assert value(fresh, "conveyor_open_batches", status="PENDING") == 1
        assert value(fresh, "conveyor_oldest_pending_job_age_seconds", queue="documents") > 0
        assert value(fresh, "conveyor_oldest_pending_job_age_seconds", queue="analysis") == 0
        assert value(fresh, "conveyor_webhooks_failed") == 0
        last_success = value(fresh, "conveyor_business_metrics_last_success_timestamp_seconds")

        # The ledger breaks: the scrape still answers, with the last figures and an old timestamp.
        database = sqlite3.connect(service_settings.database_url.removeprefix("sqlite:///"))
        database.execute("ALTER TABLE jobs RENAME TO jobs_elsewhere")
        database.commit()
        database.close()
        time.sleep(1.1)  # past the refresh period
        broken = scrape(fresh_api)
    assert value(broken, "conveyor_backlog_jobs", tier="standard") == 2
    assert value(broken, "conveyor_business_metrics_last_success_timestamp_seconds") == last_success
