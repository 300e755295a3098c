"""The operators' dashboard: its page and assets, and the admin JSON it polls
(every client's batches, tiers, failures, queues, the last hour)."""

from __future__ import annotations

from starlette.testclient import TestClient

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from gateway.app import create_app


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
    documents = next(row for row in overview["queues"] if row["queue"] == "documents")
    assert documents == {
        "queue": "documents", "ready": 3, "consumers": 0, "unacked": 0,  # unacked from RabbitMQ's Prometheus plugin
        "arrived_per_minute": 3, "ended_per_minute": 1,
    }
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


def test_without_rabbitmq_s_metrics_the_unacked_figure_is_unknown_not_zero(
    service_environment: dict[str, str], service_settings: Settings, free_port
) -> None:
    settings = Settings.from_env({**service_environment, "CONVEYOR_RABBITMQ_METRICS_URL": f"http://127.0.0.1:{free_port()}"})
    with TestClient(create_app(settings)) as api:
        engine = create_ledger_engine(settings.database_url)
        operator = register_client(Ledger(engine), Tiers.load(settings.tiers_file, settings.max_priority), "ops", "enterprise", ["admin"])
        engine.dispose()
        headers = {"Authorization": f"Bearer {api.app.state.services.tokens.issue(operator.client).token}"}
        queues = api.get("/api/v1/admin/dashboard", headers=headers).json()["queues"]
    assert {row["unacked"] for row in queues} == {None}
    assert {row["ready"] for row in queues} == {0}, "the rest of the figures still come"
