"""Watched-directory admin routes, through the in-process gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conveyor.credentials import register_client
from conveyor.ledger import Ledger
from conveyor.ledger.watching import WatchLedger
from conveyor.settings import Settings
from conveyor.tiers import Tiers

ROUTE = "/api/v1/admin/watched-directories"


def _headers(api: TestClient, client) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.app.state.services.tokens.issue(client).token}"}


@pytest.fixture
def operator(api: TestClient, service_ledger: Ledger, service_settings: Settings) -> dict[str, str]:
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    credential = register_client(service_ledger, tiers, "operator", "enterprise", ["admin", "batches:read"])
    return _headers(api, credential.client)


@pytest.fixture
def uploader(make_client) -> str:
    return make_client(tier="premium").client.id


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    directory = tmp_path / "inbox"
    directory.mkdir()
    return directory


def test_an_operator_adds_lists_and_removes_a_directory(
    api: TestClient, operator: dict[str, str], uploader: str, inbox: Path, service_settings: Settings
) -> None:
    response = api.post(ROUTE, headers=operator, json={"path": f"{inbox}/", "client_id": uploader})
    assert response.status_code == 201, response.text
    directory = response.json()
    assert directory["path"] == str(inbox)
    assert directory["client_id"] == uploader
    assert directory["recursive"] is False
    assert directory["extensions"] == list(service_settings.watch_extensions)
    assert directory["settle_seconds"] == service_settings.watch_settle_seconds
    assert response.headers["location"] == directory["links"]["self"] == f"{ROUTE}/{directory['id']}"

    assert api.get(ROUTE, headers=operator).json() == {"watched_directories": [directory]}

    assert api.delete(f"{ROUTE}/{directory['id']}", headers=operator).status_code == 204
    missing = api.delete(f"{ROUTE}/{directory['id']}", headers=operator)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert api.get(ROUTE, headers=operator).json() == {"watched_directories": []}


def test_options_are_stored_as_given(
    api: TestClient, operator: dict[str, str], uploader: str, inbox: Path, service_ledger: Ledger
) -> None:
    body = {"path": str(inbox), "client_id": uploader, "recursive": True, "extensions": [".CSV", ".tsv"], "settle_seconds": 5}
    created = api.post(ROUTE, headers=operator, json=body).json()
    assert (created["recursive"], created["extensions"], created["settle_seconds"]) == (True, [".csv", ".tsv"], 5)
    stored = WatchLedger(service_ledger.engine).get_directory(created["id"])
    assert stored is not None and stored.extensions == (".csv", ".tsv") and stored.recursive


def test_a_directory_watched_already_is_a_409(api: TestClient, operator: dict[str, str], uploader: str, inbox: Path) -> None:
    assert api.post(ROUTE, headers=operator, json={"path": str(inbox), "client_id": uploader}).status_code == 201
    again = api.post(ROUTE, headers=operator, json={"path": f"{inbox}/./", "client_id": uploader})
    assert (again.status_code, again.json()["error"]) == (409, "already_watched")
    assert str(inbox) in again.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"path": "relative/inbox"}, "invalid_path"),
        ({"path": ""}, "invalid_body"),
        ({"path": 5}, "invalid_body"),
        ({"path": "/no/such/directory"}, "not_a_directory"),
        ({"client_id": "cl_nobody"}, "unknown_client"),
        ({"client_id": None}, "invalid_body"),
        ({"extensions": ["txt"]}, "invalid_extensions"),
        ({"extensions": []}, "invalid_extensions"),
        ({"extensions": ".txt"}, "invalid_extensions"),
        ({"extensions": [".txt", 3]}, "invalid_extensions"),
        ({"recursive": "yes"}, "invalid_body"),
        ({"settle_seconds": 0}, "invalid_body"),
        ({"settle_seconds": 1.5}, "invalid_body"),
        ({"settle_seconds": True}, "invalid_body"),
        ({"owner": "me"}, "invalid_body"),
    ],
)
def test_bad_input_is_a_422_naming_the_problem(
    api: TestClient, operator: dict[str, str], uploader: str, inbox: Path, changes: dict, error: str
) -> None:
    body = {"path": str(inbox), "client_id": uploader, **changes}
    response = api.post(ROUTE, headers=operator, json=body)
    assert (response.status_code, response.json()["error"]) == (422, error), response.text
    assert response.json()["detail"]
    assert api.get(ROUTE, headers=operator).json() == {"watched_directories": []}


def test_a_file_is_not_a_directory(api: TestClient, operator: dict[str, str], uploader: str, inbox: Path) -> None:
    (inbox / "a.txt").write_text("x")
    response = api.post(ROUTE, headers=operator, json={"path": str(inbox / "a.txt"), "client_id": uploader})
    assert (response.status_code, response.json()["error"]) == (422, "not_a_directory")


def test_a_client_that_cannot_upload_is_refused(
    api: TestClient, operator: dict[str, str], inbox: Path, service_ledger: Ledger, service_settings: Settings
) -> None:
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    reader = register_client(service_ledger, tiers, "reader", "standard", ["batches:read"]).client.id
    response = api.post(ROUTE, headers=operator, json={"path": str(inbox), "client_id": reader})
    assert (response.status_code, response.json()["error"]) == (422, "unknown_client")
    assert "batches:write" in response.json()["detail"]


def test_malformed_and_non_object_bodies(api: TestClient, operator: dict[str, str]) -> None:
    malformed = api.post(ROUTE, headers={**operator, "Content-Type": "application/json"}, content=b"{")
    assert (malformed.status_code, malformed.json()["error"]) == (400, "malformed_json")
    listed = api.post(ROUTE, headers=operator, json=["/tmp"])
    assert listed.status_code == 422


@pytest.mark.parametrize(("method", "path"), [("GET", ROUTE), ("POST", ROUTE), ("DELETE", f"{ROUTE}/some-id")])
def test_the_routes_need_the_admin_scope(api: TestClient, make_client, method: str, path: str) -> None:
    headers = _headers(api, make_client(tier="enterprise").client)
    response = api.request(method, path, headers=headers, json={})
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")
    assert api.request(method, path).status_code == 401
