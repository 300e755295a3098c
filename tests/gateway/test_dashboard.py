"""The operators' dashboard: its page and assets, and the admin JSON it polls
(every client's batches, tiers, failures, queues, the last hour)."""

from __future__ import annotations

from starlette.testclient import TestClient

from conveyor.ledger import Ledger


def upload(api: TestClient, headers: dict[str, str], names: list[str]) -> dict:
    files = [("files", (name, f"content of {name}".encode())) for name in names]
    response = api.post("/api/v1/batches", headers=headers, files=files)
    assert response.status_code == 202, response.text
    return response.json()


def bearer(api: TestClient, credential) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.app.state.services.tokens.issue(credential.client).token}"}


def test_the_page_and_its_assets_are_served_without_a_token(api: TestClient) -> None:
    page = api.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/dashboard/app.js"' in page.text and "cdn" not in page.text.lower()
    assert api.get("/dashboard/app.js").headers["content-type"].startswith("text/javascript")
    assert api.get("/dashboard/style.css").headers["content-type"].startswith("text/css")
    missing = api.get("/dashboard/..%2F..%2Fconveyor%2Fsettings.py")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_the_overview_shows_every_client_s_batches_tiers_failures_and_the_last_hour(
    api: TestClient, admin: dict[str, str], make_client, service_ledger: Ledger
) -> None:
    alice, bob = make_client(tier="premium", name="alice"), make_client(tier="free", name="bob")
    first = upload(api, bearer(api, alice), ["a.txt", "b.txt"])
    second = upload(api, bearer(api, bob), ["c.txt"])
    jobs = service_ledger.list_jobs(first["id"])
    service_ledger.start_job(jobs[0].id)
    service_ledger.fail_job(jobs[0].id, "unsupported content: image/png")

    overview = api.get("/api/v1/admin/dashboard", headers=admin).json()
    listed = {row["id"]: row for row in overview["batches"]}
    assert (listed[first["id"]]["client"], listed[first["id"]]["tier"], listed[first["id"]]["failed"]) == ("alice", "premium", 1)
    assert (listed[second["id"]]["client"], listed[second["id"]]["total"]) == ("bob", 1)
    assert overview["tiers"]["premium"] == {"pending": 1, "running": 0, "ended_last_hour": 1}
    assert overview["tiers"]["free"]["pending"] == 1
    assert [(f["filename"], f["error"]) for f in overview["failures"]] == [("a.txt", "unsupported content: image/png")]
    assert len(overview["last_hour"]) == 60
    assert sum(minute["arrived"] for minute in overview["last_hour"]) == 3
    assert sum(minute["finished"] for minute in overview["last_hour"]) == 1
    assert {"queue": "documents", "ready": 3, "consumers": 0} in overview["queues"]
    assert overview["workers"]["workers"] == []

    pending_only = api.get("/api/v1/admin/dashboard", headers=admin, params={"status": "pending"}).json()["batches"]
    assert {row["id"] for row in pending_only} == {second["id"]}, "the first batch is PROCESSING"
    bad = api.get("/api/v1/admin/dashboard", headers=admin, params={"status": "nope"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_parameter"


def test_the_batch_page_shows_any_client_s_batch_with_its_jobs(api: TestClient, admin: dict[str, str], make_client) -> None:
    batch = upload(api, bearer(api, make_client()), ["a.txt", "b.txt"])
    detail = api.get(f"/api/v1/admin/batches/{batch['id']}", headers=admin).json()
    assert detail["batch"]["id"] == batch["id"]
    assert [job["filename"] for job in detail["jobs"]] == ["a.txt", "b.txt"]
    missing = api.get("/api/v1/admin/batches/no-such-batch", headers=admin)
    assert missing.status_code == 404
