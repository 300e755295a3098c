"""The gateway in process (Starlette TestClient) on a real RabbitMQ vhost and SQLite ledger."""

from __future__ import annotations

import subprocess

import pika
import pytest
from jose import jwt
from starlette.testclient import TestClient

from conveyor.blobs import BlobStore
from conveyor.credentials import IssuedCredential
from conveyor.ledger import BatchStatus, JobState, create_ledger_engine
from conveyor.settings import Settings
from gateway.app import create_app


def token_for(api: TestClient, credential: IssuedCredential) -> str:
    response = api.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credential.client.id,
            "client_secret": credential.secret,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upload(api: TestClient, token: str, files: dict[str, bytes]):
    return api.post(
        "/api/v1/batches",
        headers=bearer(token),
        files=[("files", (name, content, "application/octet-stream")) for name, content in files.items()],
    )


def queue_depth(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def test_health_and_ready(api: TestClient) -> None:
    assert api.get("/api/v1/health").json() == {"status": "ok"}
    ready = api.get("/api/v1/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"ledger": "ok", "broker": "ok"}


def test_ready_names_the_failing_broker(service_environment: dict[str, str], service_settings: Settings) -> None:
    unreachable = Settings.from_env({**service_environment, "CONVEYOR_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})
    with TestClient(create_app(unreachable)) as client:
        response = client.get("/api/v1/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not_ready"
    assert body["checks"]["ledger"] == "ok"
    assert body["checks"]["broker"].startswith("failing")
    assert "broker" in body["detail"]


def test_token_is_a_pinned_jwt_with_every_claim(api: TestClient, make_client, service_settings: Settings) -> None:
    credential = make_client(tier="premium")
    token = token_for(api, credential)
    header = jwt.get_unverified_header(token)
    claims = jwt.get_unverified_claims(token)
    assert header["alg"] == "HS256"
    assert {"exp", "iat", "jti", "iss", "aud", "sub", "tier", "scopes"} <= set(claims)
    assert (claims["sub"], claims["tier"]) == (credential.client.id, "premium")
    assert header["kid"]
    assert abs(claims["exp"] - claims["iat"] - service_settings.token_ttl_seconds) < 1


def test_token_accepts_http_basic_client_authentication(api: TestClient, make_client) -> None:
    credential = make_client()
    response = api.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(credential.client.id, credential.secret),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password", "client_id": "x", "client_secret": "y"}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "client_id": "cl_nobody", "client_secret": "y"}, 401, "invalid_client"),
    ],
)
def test_token_rejects_bad_requests(api: TestClient, form: dict, status: int, error: str) -> None:
    response = api.post("/api/v1/auth/token", data=form)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_token_rejects_a_wrong_secret(api: TestClient, make_client) -> None:
    credential = make_client()
    response = api.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": credential.client.id, "client_secret": "wrong"},
    )
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "detail": "unknown client or wrong secret"}


def test_upload_records_stores_and_queues_every_document(api: TestClient, make_client, service_settings: Settings) -> None:
    token = token_for(api, make_client(tier="premium"))
    files = {"a.txt": b"alpha beta", "b.md": b"# Title\n\ntext", "c.csv": b"x,y\n1,2\n"}
    response = upload(api, token, files)
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/batches/{body['id']}"
    assert body["status"] == "PENDING"
    assert body["counts"] == {"total": 3, "succeeded": 0, "failed": 0, "cancelled": 0, "pending": 3}
    assert body["links"]["results"] == f"/api/v1/batches/{body['id']}/results"
    assert queue_depth(service_settings.broker_url, "documents") == 3

    results = api.get(body["links"]["results"], headers=bearer(token)).json()
    store = BlobStore(service_settings.blob_dir)
    assert [job["filename"] for job in results["jobs"]] == ["a.txt", "b.md", "c.csv"]
    for job, content in zip(results["jobs"], files.values()):
        assert store.read(job["sha256"]) == content
        assert (job["state"], job["size_bytes"]) == ("PENDING", len(content))


def test_filenames_are_labels_not_paths(api: TestClient, make_client) -> None:
    token = token_for(api, make_client())
    response = upload(api, token, {"../../etc/passwd": b"x", "C:\\temp\\evil.txt": b"y"})
    batch_id = response.json()["id"]
    jobs = api.get(f"/api/v1/batches/{batch_id}/results", headers=bearer(token)).json()["jobs"]
    assert [job["filename"] for job in jobs] == ["passwd", "evil.txt"]


def test_another_clients_batch_is_404(api: TestClient, make_client) -> None:
    owner, stranger = token_for(api, make_client()), token_for(api, make_client())
    batch_id = upload(api, owner, {"a.txt": b"mine"}).json()["id"]
    assert api.get(f"/api/v1/batches/{batch_id}", headers=bearer(owner)).status_code == 200
    for path in (f"/api/v1/batches/{batch_id}", f"/api/v1/batches/{batch_id}/results"):
        response = api.get(path, headers=bearer(stranger))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_file_over_the_size_cap_is_413_and_nothing_is_recorded(
    service_environment: dict[str, str], make_client, service_settings: Settings, make_tiers_file
) -> None:
    small = Settings.from_env({**service_environment, "CONVEYOR_TIERS_FILE": str(make_tiers_file(max_file_bytes=1000))})
    with TestClient(create_app(small)) as api:
        token = token_for(api, make_client())
        response = upload(api, token, {"ok.txt": b"fine", "big.txt": b"x" * 1001})
    assert response.status_code == 413
    assert response.json()["error"] == "file_too_large"
    assert "big.txt" in response.json()["detail"]
    assert _batch_count(service_settings) == 0
    assert list((service_settings.blob_dir / "tmp").iterdir()) == []


def test_too_many_files_is_413(
    service_environment: dict[str, str], make_client, service_settings: Settings, make_tiers_file
) -> None:
    capped = Settings.from_env({**service_environment, "CONVEYOR_TIERS_FILE": str(make_tiers_file(max_files_per_batch=2))})
    with TestClient(create_app(capped)) as api:
        response = upload(api, token_for(api, make_client()), {"1.txt": b"1", "2.txt": b"2", "3.txt": b"3"})
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_files"
    assert _batch_count(service_settings) == 0


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"content": b"plain", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"content": b"--xx\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=xx"}}, 400, "incomplete_upload"),
        ({"data": {"note": "no files"}, "files": {"": ("", b"")}}, 400, "bad_request"),
        ({"content": b"--xx--\r\n", "headers": {"Content-Type": "multipart/form-data; boundary=xx"}}, 400, "no_files"),
    ],
)
def test_malformed_uploads_get_clear_errors(api: TestClient, make_client, kwargs: dict, status: int, error: str) -> None:
    token = token_for(api, make_client())
    headers = {**bearer(token), **kwargs.pop("headers", {})}
    response = api.post("/api/v1/batches", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def test_unreachable_broker_gives_503_before_anything_is_stored(
    service_environment: dict[str, str], make_client, service_settings: Settings
) -> None:
    unreachable = Settings.from_env({**service_environment, "CONVEYOR_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"})
    with TestClient(create_app(unreachable)) as api:
        response = upload(api, token_for(api, make_client()), {"a.txt": b"hello"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "10"
    assert response.json()["error"] == "broker_unavailable"
    assert _batch_count(service_settings) == 0
    assert [p for p in service_settings.blob_dir.rglob("*") if p.is_file()] == []


def test_broker_lost_while_publishing_cancels_the_batch_and_gives_503(
    api: TestClient, make_client, service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RabbitMQ disappears after the backlog check but before the publish: the
    recorded batch is cancelled with the reason, never left to run half-queued."""
    monkeypatch.setattr("gateway.publisher.DEPTH_CACHE_SECONDS", 3600.0)
    token = token_for(api, make_client())
    assert upload(api, token, {"first.txt": b"queued"}).status_code == 202
    vhost = service_settings.broker_url.rsplit("/", 1)[1]
    subprocess.run(["rabbitmqctl", "--quiet", "delete_vhost", vhost], check=True, capture_output=True, timeout=60)

    response = upload(api, token, {"second.txt": b"never queued"})
    assert response.status_code == 503
    assert response.json()["error"] == "broker_unavailable"
    assert response.headers["retry-after"] == "10"
    engine = create_ledger_engine(service_settings.database_url)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT b.status, b.status_reason, j.state FROM batches b JOIN jobs j ON j.batch_id = b.id "
            "WHERE j.filename = 'second.txt'"
        ).all()
    engine.dispose()
    assert [(row.status, row.state) for row in rows] == [(BatchStatus.CANCELLED, JobState.CANCELLED)]
    assert "broker was unavailable" in rows[0].status_reason


def test_unknown_routes_and_methods_answer_json(api: TestClient) -> None:
    assert api.get("/nope").json()["error"] == "not_found"
    response = api.delete("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def _batch_ids(settings: Settings) -> list[str]:
    engine = create_ledger_engine(settings.database_url)
    with engine.connect() as connection:
        ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM batches")]
    engine.dispose()
    return ids


def _batch_count(settings: Settings) -> int:
    return len(_batch_ids(settings))


def test_client_over_its_pending_job_quota_gets_429(
    service_environment: dict[str, str], make_client, service_settings: Settings, make_tiers_file
) -> None:
    quota = Settings.from_env({**service_environment, "CONVEYOR_TIERS_FILE": str(make_tiers_file(max_pending_jobs=3))})
    with TestClient(create_app(quota)) as api:
        token = token_for(api, make_client())
        assert upload(api, token, {"1.txt": b"1", "2.txt": b"2"}).status_code == 202
        over = upload(api, token, {"3.txt": b"3", "4.txt": b"4"})
        assert over.status_code == 429
        assert over.json()["error"] == "quota_exceeded"
        assert "you have 2 queued or running jobs and this request adds 2" in over.json()["detail"]
        assert upload(api, token, {"3.txt": b"3"}).status_code == 202
        full = upload(api, token, {"5.txt": b"5"})
        assert (full.status_code, full.json()["error"]) == (429, "quota_exceeded")
        assert upload(api, token_for(api, make_client()), {"other.txt": b"o"}).status_code == 202  # per client
    assert _batch_count(service_settings) == 3


def test_a_full_queue_refuses_uploads_with_503_and_stores_nothing(
    service_environment: dict[str, str], make_client, service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.publisher.DEPTH_CACHE_SECONDS", 0.0)
    capped = Settings.from_env({**service_environment, "CONVEYOR_MAX_READY_MESSAGES": "2"})
    with TestClient(create_app(capped)) as api:
        token = token_for(api, make_client())
        assert upload(api, token, {"1.txt": b"1", "2.txt": b"2", "3.txt": b"3"}).status_code == 202
        blobs_before = sorted(p for p in service_settings.blob_dir.rglob("*") if p.is_file())
        refused = upload(api, token, {"4.txt": b"4"})
    assert refused.status_code == 503
    assert refused.json()["error"] == "backlog_full"
    assert "holds 3 waiting jobs (cap 2)" in refused.json()["detail"]
    assert refused.headers["retry-after"] == "30"
    assert _batch_count(service_settings) == 1
    assert sorted(p for p in service_settings.blob_dir.rglob("*") if p.is_file()) == blobs_before


def _stored_blobs(settings: Settings) -> set[str]:
    return {p.name for p in settings.blob_dir.rglob("*") if p.is_file() and p.parent.name != "tmp"}


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300)


@pytest.mark.parametrize(
    ("files", "status", "error", "named"),
    [
        ({"good.txt": b"fine", "empty.txt": b""}, 400, "empty_file", "empty.txt"),
        ({"good.txt": b"fine", "photo.txt": PNG}, 415, "unsupported_file_type", "photo.txt is image/png"),
        ({"good.txt": b"fine", "tiny.gif": b"GIF89a" + bytes(10)}, 415, "unsupported_file_type", "image/gif"),
    ],
)
def test_refused_files_roll_back_the_whole_upload(
    api: TestClient, make_client, service_settings: Settings, files: dict, status: int, error: str, named: str
) -> None:
    response = upload(api, token_for(api, make_client()), files)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert named in response.json()["detail"]
    assert _batch_count(service_settings) == 0
    assert _stored_blobs(service_settings) == set()


def test_a_refused_upload_never_removes_a_blob_an_accepted_batch_uses(
    api: TestClient, make_client, service_settings: Settings
) -> None:
    token = token_for(api, make_client())
    accepted = upload(api, token, {"shared.txt": b"shared content"})
    assert accepted.status_code == 202
    blobs = _stored_blobs(service_settings)
    refused = upload(api, token, {"shared.txt": b"shared content", "new.txt": b"brand new", "empty.txt": b""})
    assert refused.status_code == 400
    assert _stored_blobs(service_settings) == blobs


def test_multipart_without_boundary_is_a_clean_error(api: TestClient, make_client) -> None:
    headers = {"Authorization": f"Bearer {token_for(api, make_client())}", "Content-Type": "multipart/form-data"}
    response = api.post("/api/v1/batches", headers=headers, content=b"--x\r\n")
    assert response.status_code == 415
    assert "boundary" in response.json()["detail"]
