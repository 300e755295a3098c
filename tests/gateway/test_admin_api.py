"""Admin routes: only for the admin scope; revocation and key rotation take effect."""

from __future__ import annotations

import pytest
from jose import jwt
from starlette.testclient import TestClient

from gateway.app import ROUTE_TABLE

ADMIN_ROUTES = [(path, method) for path, method, _, _ in ROUTE_TABLE if path.startswith("/api/v1/admin/")]


def token(api: TestClient, credential) -> str:
    response = api.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": credential.client.id, "client_secret": credential.secret},
    )
    return response.json()["access_token"]


@pytest.mark.parametrize(("path", "method"), ADMIN_ROUTES)
def test_admin_routes_need_the_admin_scope(api: TestClient, make_client, path: str, method: str) -> None:
    headers = {"Authorization": f"Bearer {token(api, make_client(tier='enterprise'))}"}
    response = api.request(method, path, headers=headers, json={"jti": "x"})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_list_clients_shows_no_secrets(api: TestClient, admin: dict[str, str], make_client) -> None:
    created = make_client(tier="premium", name="acme")
    clients = api.get("/api/v1/admin/clients", headers=admin).json()["clients"]
    acme = next(client for client in clients if client["id"] == created.client.id)
    assert (acme["name"], acme["tier"], acme["disabled_at"]) == ("acme", "premium", None)
    assert "secret" not in str(clients).lower()


def test_revoking_one_token_leaves_the_others(api: TestClient, admin: dict[str, str], make_client) -> None:
    credential = make_client()
    revoked, kept = token(api, credential), token(api, credential)
    jti = jwt.get_unverified_claims(revoked)["jti"]
    response = api.post("/api/v1/admin/tokens/revoke", headers=admin, json={"jti": jti})
    assert response.json() == {"revoked": {"jti": jti}}
    assert api.get("/api/v1/batches", headers={"Authorization": f"Bearer {revoked}"}).status_code == 401
    assert api.get("/api/v1/batches", headers={"Authorization": f"Bearer {kept}"}).status_code == 200


def test_revoking_a_client_cuts_off_its_tokens_until_it_signs_in_again(
    api: TestClient, admin: dict[str, str], make_client
) -> None:
    credential = make_client()
    old = token(api, credential)
    assert api.post("/api/v1/admin/tokens/revoke", headers=admin, json={"client_id": credential.client.id}).status_code == 200
    assert api.get("/api/v1/batches", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    fresh = token(api, credential)
    assert api.get("/api/v1/batches", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 422), ({"jti": 5}, 422), ({"jti": "a", "client_id": "b"}, 422), ({"client_id": "cl_nobody"}, 404)],
)
def test_revoke_rejects_bad_bodies(api: TestClient, admin: dict[str, str], body: dict, status: int) -> None:
    assert api.post("/api/v1/admin/tokens/revoke", headers=admin, json=body).status_code == status
    malformed = api.post("/api/v1/admin/tokens/revoke", headers={**admin, "Content-Type": "application/json"}, content=b"{")
    assert (malformed.status_code, malformed.json()["error"]) == (400, "malformed_json")


def test_rotating_the_signing_key(api: TestClient, admin: dict[str, str], make_client) -> None:
    credential = make_client()
    before = token(api, credential)
    rotated = api.post("/api/v1/admin/signing-keys/rotate", headers=admin).json()
    after = token(api, credential)
    assert jwt.get_unverified_header(after)["kid"] == rotated["kid"] != jwt.get_unverified_header(before)["kid"]
    for issued in (before, after):
        assert api.get("/api/v1/batches", headers={"Authorization": f"Bearer {issued}"}).status_code == 200


def test_queue_depths(api: TestClient, admin: dict[str, str], make_client) -> None:
    uploader = {"Authorization": f"Bearer {token(api, make_client())}"}
    api.post("/api/v1/batches", headers=uploader, files=[("files", ("a.txt", b"a")), ("files", ("b.txt", b"b"))])
    listed = api.get("/api/v1/admin/queues", headers=admin).json()["queues"]
    queues = {entry["queue"]: (entry["ready"], entry["consumers"]) for entry in listed}
    assert queues == {
        f"{queue}{suffix}": (2 if queue + suffix == "documents" else 0, 0)  # no worker runs here
        for queue in ("documents", "analysis", "maintenance")
        for suffix in ("", ".DQ", ".XQ")
    }
