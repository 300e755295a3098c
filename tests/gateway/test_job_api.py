"""The job API beyond upload: listing, paging, single jobs, reports, cancel,
retry and idempotent uploads, in process on a real RabbitMQ vhost and service_ledger
(no worker runs here: job outcomes are recorded through the service_ledger as a worker
would record them)."""

from __future__ import annotations

import csv
import io

import pika
import pytest
from starlette.testclient import TestClient

from sqlalchemy import update

from conveyor.ledger import Ledger
from conveyor.ledger.schema import batches
from conveyor.settings import Settings


@pytest.fixture
def bearer(api: TestClient, make_client):
    def headers(tier: str = "standard") -> dict[str, str]:
        credential = make_client(tier=tier)
        return {"Authorization": f"Bearer {api.app.state.services.tokens.issue(credential.client).token}"}

    return headers


def upload(api: TestClient, headers: dict[str, str], names: list[str], **extra_headers: str):
    files = [("files", (name, f"content of {name}".encode())) for name in names]
    return api.post("/api/v1/batches", headers={**headers, **extra_headers}, files=files)


def queue_depth(settings: Settings) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        return connection.channel().queue_declare("documents", passive=True).method.message_count
    finally:
        connection.close()


def settle(service_ledger: Ledger, batch_id: str, outcomes: list[str]) -> None:
    """Record outcomes for the batch's jobs, in order, as a worker would."""
    for job, outcome in zip(service_ledger.list_jobs(batch_id), outcomes):
        service_ledger.start_job(job.id)
        if outcome == "ok":
            service_ledger.succeed_job(job.id, {"kind": "text", "word_count": 3, "line_count": 1, "chunks": [{}]})
        else:
            service_ledger.fail_job(job.id, "unsupported content: image/png")


def test_listing_is_newest_first_paged_and_filtered(api: TestClient, bearer, service_ledger: Ledger) -> None:
    mine, theirs = bearer(), bearer()
    created = [upload(api, mine, [f"{i}.txt"]).json()["id"] for i in range(5)]
    upload(api, theirs, ["other.txt"])
    settle(service_ledger, created[1], ["ok"])

    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/batches", headers=mine, params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["batches"]) <= 2
        seen += [batch["id"] for batch in page["batches"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))

    completed = api.get("/api/v1/batches", headers=mine, params={"status": "completed"}).json()
    assert [batch["id"] for batch in completed["batches"]] == [created[1]]
    assert completed["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"status": "DONE"}, "invalid_parameter"),
        ({"limit": "0"}, "invalid_parameter"),
        ({"limit": "101"}, "invalid_parameter"),
        ({"limit": "ten"}, "invalid_parameter"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": "WyJ4Il0"}, "invalid_cursor"),  # a list, but not a position
    ],
)
def test_listing_rejects_bad_parameters(api: TestClient, bearer, params: dict, error: str) -> None:
    response = api.get("/api/v1/batches", headers=bearer(), params=params)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_results_are_paged_in_upload_order(api: TestClient, bearer) -> None:
    headers = bearer()
    names = [f"doc-{i}.txt" for i in range(5)]
    batch = upload(api, headers, names).json()
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(batch["links"]["results"], headers=headers, params=params).json()
        assert page["batch"]["id"] == batch["id"]
        seen += [job["filename"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names


def test_a_job_is_readable_by_its_owner_only(api: TestClient, bearer) -> None:
    owner, stranger = bearer(), bearer()
    batch = upload(api, owner, ["a.txt"]).json()
    job = api.get(batch["links"]["results"], headers=owner).json()["jobs"][0]
    own = api.get(job["links"]["self"], headers=owner)
    assert own.status_code == 200
    assert (own.json()["id"], own.json()["batch_id"], own.json()["state"]) == (job["id"], batch["id"], "PENDING")
    assert api.get(job["links"]["self"], headers=stranger).status_code == 404
    assert api.get("/api/v1/jobs/no-such-job", headers=owner).json()["error"] == "not_found"


def test_report_in_every_format(api: TestClient, bearer, service_ledger: Ledger) -> None:
    headers = bearer()
    batch = upload(api, headers, ["good.txt", "bad<script>.txt"]).json()
    settle(service_ledger, batch["id"], ["ok", "fail"])
    report = batch["links"]["report"]

    as_json = api.get(report, headers=headers).json()
    assert as_json["summary"]["status"] == "PARTIALLY_COMPLETED"
    assert (as_json["summary"]["succeeded"], as_json["summary"]["failed"]) == (1, 1)
    assert [(row["filename"], row["state"], row["words"]) for row in as_json["jobs"]] == [
        ("good.txt", "SUCCEEDED", 3),
        ("bad<script>.txt", "FAILED", None),
    ]

    as_csv = api.get(report, headers=headers, params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(row["filename"], row["state"], row["error"]) for row in rows] == [
        ("good.txt", "SUCCEEDED", ""),
        ("bad<script>.txt", "FAILED", "unsupported content: image/png"),
    ]

    as_html = api.get(report, headers=headers, params={"format": "html"})
    assert as_html.headers["content-type"].startswith("text/html")
    page = as_html.text
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "PARTIALLY_COMPLETED" in page
    assert "bad&lt;script&gt;.txt" in page and "<script>" not in page

    assert api.get(report, headers=headers, params={"format": "pdf"}).json()["error"] == "invalid_parameter"


def test_cancel_stops_pending_jobs_and_is_final(api: TestClient, bearer) -> None:
    headers = bearer()
    batch = upload(api, headers, ["a.txt", "b.txt"]).json()
    cancelled = api.delete(batch["links"]["self"], headers=headers)
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "CANCELLED"
    assert cancelled.json()["counts"]["cancelled"] == 2
    assert cancelled.json()["cancel_requested_at"] is not None
    jobs = api.get(batch["links"]["results"], headers=headers).json()["jobs"]
    assert {job["state"] for job in jobs} == {"CANCELLED"}
    again = api.delete(batch["links"]["self"], headers=headers)
    assert (again.status_code, again.json()["error"]) == (409, "batch_finished")
    retry = api.post(f"{batch['links']['self']}/retry", headers=headers)
    assert (retry.status_code, retry.json()["error"]) == (409, "batch_cancelled")


def test_retry_requeues_only_failed_jobs(api: TestClient, bearer, service_ledger: Ledger, service_settings: Settings) -> None:
    headers = bearer()
    batch = upload(api, headers, ["good.txt", "bad-1.txt", "bad-2.txt"]).json()
    settle(service_ledger, batch["id"], ["ok", "fail", "fail"])
    depth_before = queue_depth(service_settings)

    retried = api.post(f"{batch['links']['self']}/retry", headers=headers)
    assert retried.status_code == 202
    body = retried.json()
    assert body["batch"]["status"] == "PROCESSING"
    assert body["batch"]["counts"] == {"total": 3, "succeeded": 1, "failed": 0, "cancelled": 0, "pending": 2}
    assert len(body["retried_jobs"]) == 2
    assert queue_depth(service_settings) == depth_before + 2
    states = {job["filename"]: job["state"] for job in api.get(batch["links"]["results"], headers=headers).json()["jobs"]}
    assert states == {"good.txt": "SUCCEEDED", "bad-1.txt": "PENDING", "bad-2.txt": "PENDING"}

    nothing = api.post(f"{batch['links']['self']}/retry", headers=headers)
    assert (nothing.status_code, nothing.json()["error"]) == (409, "nothing_to_retry")


def test_idempotent_upload_returns_the_same_batch(api: TestClient, bearer, service_settings: Settings) -> None:
    headers = bearer()
    first = upload(api, headers, ["a.txt", "b.txt"], **{"Idempotency-Key": "order-42"})
    depth = queue_depth(service_settings)
    again = upload(api, headers, ["a.txt", "b.txt"], **{"Idempotency-Key": "order-42"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert queue_depth(service_settings) == depth  # no new jobs
    listed = api.get("/api/v1/batches", headers=headers).json()["batches"]
    assert [batch["id"] for batch in listed] == [first.json()["id"]]

    conflict = upload(api, headers, ["a.txt", "c.txt"], **{"Idempotency-Key": "order-42"})
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "idempotency_conflict"

    other_client = upload(api, bearer(), ["a.txt", "b.txt"], **{"Idempotency-Key": "order-42"})
    assert other_client.status_code == 202 and other_client.json()["id"] != first.json()["id"]

    bad_key = upload(api, headers, ["a.txt"], **{"Idempotency-Key": "x" * 256})
    assert (bad_key.status_code, bad_key.json()["error"]) == (400, "invalid_idempotency_key")


def test_a_retry_finishes_publishing_a_batch_whose_replica_died(
    api: TestClient, bearer, service_settings: Settings, service_ledger: Ledger
) -> None:
    """The replica recorded the batch, then died before publishing it (its
    messages never reached RabbitMQ): the client's retry with the same key
    publishes the waiting jobs instead of replaying a batch nobody will run."""
    headers = bearer()
    first = upload(api, headers, ["a.txt", "b.txt"], **{"Idempotency-Key": "order-43"}).json()
    connection = pika.BlockingConnection(pika.URLParameters(service_settings.broker_url))
    connection.channel().queue_purge("documents")
    connection.close()
    with service_ledger.engine.begin() as transaction:
        transaction.execute(update(batches).where(batches.c.id == first["id"]).values(published_at=None))

    again = upload(api, headers, ["a.txt", "b.txt"], **{"Idempotency-Key": "order-43"})
    assert (again.status_code, again.json()["id"]) == (202, first["id"])
    assert queue_depth(service_settings) == 2
    assert service_ledger.find_batch(first["id"]).published_at is not None
    upload(api, headers, ["a.txt", "b.txt"], **{"Idempotency-Key": "order-43"})
    assert queue_depth(service_settings) == 2  # published once marked, never again


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/results"), ("GET", "/report"), ("DELETE", ""), ("POST", "/retry")],
)
def test_another_clients_batch_is_404_everywhere(api: TestClient, bearer, method: str, suffix: str) -> None:
    batch = upload(api, bearer(), ["a.txt"]).json()
    response = api.request(method, f"{batch['links']['self']}{suffix}", headers=bearer())
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_client_reads_its_tier_and_limits(api: TestClient, bearer) -> None:
    limits = api.get("/api/v1/limits", headers=bearer("premium")).json()
    assert limits["tier"] == "premium"
    assert {"priority", "max_files_per_batch", "max_file_bytes", "max_pending_jobs", "upload_rate", "read_rate"} <= set(limits)
    assert api.get("/api/v1/limits").status_code == 401
