"""Schedule routes and the live-worker listing, through the in-process gateway."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from conveyor.credentials import register_client
from conveyor.ledger import Ledger
from conveyor.ledger.maintenance import MaintenanceLedger
from conveyor.ledger.scheduling import ScheduleLedger
from conveyor.settings import Settings
from conveyor.tiers import Tiers


def _headers(api: TestClient, client) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.app.state.services.tokens.issue(client).token}"}


@pytest.fixture
def caller(api: TestClient, make_client) -> dict[str, str]:
    return _headers(api, make_client().client)


@pytest.fixture
def operator(api: TestClient, service_ledger: Ledger, service_settings: Settings) -> dict[str, str]:
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    credential = register_client(service_ledger, tiers, "operator", "enterprise", ["admin", "batches:read", "batches:write"])
    return _headers(api, credential.client)


def _batch(api: TestClient, headers: dict[str, str]) -> str:
    response = api.post("/api/v1/batches", headers=headers, files=[("files", ("a.txt", b"hello schedule"))])
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_client_schedules_lists_and_deletes_reruns_of_its_batch(api: TestClient, caller: dict[str, str]) -> None:
    batch_id = _batch(api, caller)
    response = api.post(
        "/api/v1/schedules", headers=caller, json={"name": "nightly", "cron": "@daily", "source": batch_id}
    )
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert (schedule["source_kind"], schedule["source"], schedule["enabled"]) == ("batch", batch_id, True)
    assert datetime.fromisoformat(schedule["next_run_at"]) > datetime.now(UTC)
    assert response.headers["location"] == schedule["links"]["self"] == f"/api/v1/schedules/{schedule['id']}"

    listed = api.get("/api/v1/schedules", headers=caller).json()["schedules"]
    assert [s["id"] for s in listed] == [schedule["id"]]

    assert api.delete(f"/api/v1/schedules/{schedule['id']}", headers=caller).status_code == 204
    assert api.delete(f"/api/v1/schedules/{schedule['id']}", headers=caller).status_code == 404
    assert api.get("/api/v1/schedules", headers=caller).json() == {"schedules": []}


def test_a_bad_cron_spec_is_a_422_naming_the_problem(api: TestClient, caller: dict[str, str]) -> None:
    batch_id = _batch(api, caller)
    for cron, problem in (("61 * * * *", "61"), ("every day", "5 fields"), ("@often", "unknown cron alias")):
        response = api.post("/api/v1/schedules", headers=caller, json={"name": "n", "cron": cron, "source": batch_id})
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_cron" and problem in response.json()["detail"]


def test_a_template_must_be_the_callers_batch(api: TestClient, caller: dict[str, str], make_client) -> None:
    other = _headers(api, make_client().client)
    foreign = _batch(api, other)
    response = api.post("/api/v1/schedules", headers=caller, json={"name": "n", "cron": "@daily", "source": foreign})
    assert response.status_code == 404
    # and one client's schedules are invisible and undeletable to another
    mine = api.post("/api/v1/schedules", headers=other, json={"name": "n", "cron": "@daily", "source": foreign}).json()
    assert api.get("/api/v1/schedules", headers=caller).json() == {"schedules": []}
    assert api.delete(f"/api/v1/schedules/{mine['id']}", headers=caller).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "n", "cron": "@daily"}, 422),
        ({"name": "n", "cron": "@daily", "source": "x", "color": "red"}, 422),
        ({"name": "n", "cron": "@daily", "source": "x", "source_kind": "url"}, 422),
        ({"name": "", "cron": "@daily", "source": "x"}, 422),
        ([1, 2], 422),
    ],
)
def test_malformed_bodies_are_refused(api: TestClient, caller: dict[str, str], body: object, status: int) -> None:
    assert api.post("/api/v1/schedules", headers=caller, json=body).status_code == status


def test_directory_schedules_need_the_admin_scope(
    api: TestClient, caller: dict[str, str], operator: dict[str, str], service_ledger: Ledger
) -> None:
    body = {"name": "inbox", "cron": "0 6 * * 1-5", "source_kind": "directory", "source": "/srv/inbox"}
    refused = api.post("/api/v1/schedules", headers=caller, json=body)
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    created = api.post("/api/v1/schedules", headers=operator, json=body)
    assert created.status_code == 201, created.text
    assert ScheduleLedger(service_ledger.engine).get_schedule(created.json()["id"]).source == "/srv/inbox"
    relative = api.post("/api/v1/schedules", headers=operator, json={**body, "source": "inbox"})
    assert relative.status_code == 422


def test_scopes_are_enforced(api: TestClient, service_ledger: Ledger, service_settings: Settings) -> None:
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    reader = _headers(api, register_client(service_ledger, tiers, "reader", "standard", ["batches:read"]).client)
    assert api.get("/api/v1/schedules", headers=reader).status_code == 200
    response = api.post("/api/v1/schedules", headers=reader, json={"name": "n", "cron": "@daily", "source": "x"})
    assert response.status_code == 403
    assert api.delete("/api/v1/schedules/x", headers=reader).status_code == 403
    assert api.get("/api/v1/schedules").status_code == 401


def test_admins_see_live_workers_from_heartbeats(
    api: TestClient, caller: dict[str, str], operator: dict[str, str], service_ledger: Ledger
) -> None:
    maintenance = MaintenanceLedger(service_ledger.engine)
    started = datetime.now(UTC)
    maintenance.record_heartbeat("host:1:a", "host", 1, ["documents", "maintenance"], started, 2)
    maintenance.record_heartbeat("host:2:b", "host", 2, ["analysis"], started, 1)
    maintenance.remove_heartbeat("host:2:b")
    assert api.get("/api/v1/admin/workers", headers=caller).status_code == 403
    answer = api.get("/api/v1/admin/workers", headers=operator).json()
    assert answer["jobs_in_progress"] == 2
    (worker,) = answer["workers"]
    assert (worker["worker_id"], worker["queues"], worker["jobs_in_progress"]) == ("host:1:a", ["documents", "maintenance"], 2)
