"""What a batch may carry besides its files: the pipeline, a callback URL and
CSV quality thresholds — accepted, stored and shown, or refused with a 400
that names the field, before anything is recorded or queued."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from conveyor.ledger import Ledger
from conveyor.settings import Settings
from conveyor.webhook_signing import webhook_secret

THRESHOLDS = {"columns": {"accuracy": {"warning": 0.9, "fail": 0.8}}}


@pytest.fixture
def client_and_headers(api: TestClient, make_client):
    credential = make_client()
    token = api.app.state.services.tokens.issue(credential.client).token
    return credential.client, {"Authorization": f"Bearer {token}"}


def _upload(api: TestClient, headers: dict[str, str], pipeline: str | None = None, **fields: str):
    query = f"?pipeline={pipeline}" if pipeline else ""
    return api.post(
        f"/api/v1/batches{query}",
        headers=headers,
        data=fields,
        files=[("files", ("scores.csv", b"name,accuracy\na,0.95\nb,0.7\n"))],
    )


def test_a_csv_quality_batch_keeps_its_thresholds_and_callback(
    api: TestClient, client_and_headers, service_ledger: Ledger
) -> None:
    _, headers = client_and_headers
    response = _upload(
        api, headers, "csv_quality", thresholds=json.dumps(THRESHOLDS), callback_url="https://example.org/hook"
    )
    assert response.status_code == 202, response.text
    assert response.json()["callback_url"] == "https://example.org/hook"
    batch = service_ledger.find_batch(response.json()["id"])
    assert batch.pipeline_options == {
        "thresholds": {"columns": {"accuracy": {"warning": 0.9, "fail": 0.8, "direction": "higher_better"}}}
    }
    (job,) = service_ledger.list_jobs(batch.id)
    assert job.pipeline == "csv_quality"


@pytest.mark.parametrize(
    ("pipeline", "fields", "error", "detail"),
    [
        ("nonsense", {}, "unknown_pipeline", "pipeline must be one of csv_quality, document"),
        ("csv_quality", {}, "invalid_thresholds", "needs a thresholds field"),
        ("csv_quality", {"thresholds": "{"}, "invalid_thresholds", "not JSON"),
        ("csv_quality", {"thresholds": '{"columns": {"a": {"warning": 1}}}'}, "invalid_thresholds", "fail"),
        (None, {"thresholds": json.dumps(THRESHOLDS)}, "invalid_thresholds", "csv_quality pipeline only"),
        (None, {"callback_url": "ftp://example.org/x"}, "invalid_callback_url", "http:// or https://"),
        (None, {"callback_url": "https://"}, "invalid_callback_url", "with a host"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_recorded(
    api: TestClient, client_and_headers, service_ledger: Ledger, pipeline, fields, error, detail
) -> None:
    client, headers = client_and_headers
    response = _upload(api, headers, pipeline, **fields)
    assert response.status_code == 400
    assert response.json()["error"] == error and detail in response.json()["detail"]
    assert service_ledger.list_batches(client.id, None, 10, None) == []


def test_an_unknown_text_field_is_refused(api: TestClient, client_and_headers) -> None:
    _, headers = client_and_headers
    response = _upload(api, headers, None, colour="blue")
    assert response.status_code == 400 and "text fields allowed: callback_url, thresholds" in response.json()["detail"]


def test_each_client_reads_its_own_webhook_secret(
    api: TestClient, client_and_headers, service_settings: Settings
) -> None:
    client, headers = client_and_headers
    response = api.get("/api/v1/webhook-secret", headers=headers)
    assert response.status_code == 200
    assert response.json()["secret"] == webhook_secret(service_settings.jwt_secret, client.id)
    assert response.headers["cache-control"] == "no-store"
    assert api.get("/api/v1/webhook-secret").status_code == 401
