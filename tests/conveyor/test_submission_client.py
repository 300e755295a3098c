"""The submission client against a scripted gateway (httpx.MockTransport): what it
sends, which answers it waits out, which it gives up on, and its tokens."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from conveyor.access_tokens import TokenCodec
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import upgrade
from conveyor.settings import Settings, SettingsError
from conveyor.submission_client import (
    IdempotencyConflict,
    SubmissionClient,
    SubmissionRefused,
    SubmissionUnavailable,
    retry_after_seconds,
)

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
            "CONVEYOR_JWT_SECRET": secrets.token_urlsafe(48),
            "CONVEYOR_GATEWAY_URL": "http://gateway.test:8000/",
        }
    )


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    engine = create_ledger_engine(settings.database_url)
    upgrade(engine)
    yield Ledger(engine)
    engine.dispose()


@pytest.fixture
def client_id(ledger: Ledger) -> str:
    return ledger.create_client(name="watch", tier="standard", scopes=["batches:write"], secret_hash="x").id


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    first, second = tmp_path / "a.txt", tmp_path / "b.csv"
    first.write_bytes(b"alpha " * 1000)
    second.write_bytes(b"x,y\n1,2\n")
    return [first, second]


class Gateway:
    """Answers requests from a script of responses; records what it received."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def accepted(batch_id: str = "batch-1") -> httpx.Response:
    return httpx.Response(202, json={"id": batch_id, "status": "PENDING"})


def refused(status: int, error: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "detail": f"{error} detail"}, headers=headers)


def make(settings: Settings, ledger: Ledger, gateway: Gateway, slept: list[float], **options: object) -> SubmissionClient:
    return SubmissionClient(settings, ledger, sleep=slept.append, transport=httpx.MockTransport(gateway), **options)


def test_files_go_as_one_multipart_batch_with_the_key_and_a_valid_token(
    settings: Settings, ledger: Ledger, client_id: str, files: list[Path]
) -> None:
    gateway, slept = Gateway(accepted("b-42")), []
    with make(settings, ledger, gateway, slept) as client:
        assert client.submit(client_id, files, "watch-d-abc") == "b-42"
    request = gateway.requests[0]
    assert (request.method, str(request.url)) == ("POST", "http://gateway.test:8000/api/v1/batches")
    assert request.headers["idempotency-key"] == "watch-d-abc"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    body = gateway.bodies[0]
    assert body.count(b'name="files"') == 2
    assert b'filename="a.txt"' in body and b'filename="b.csv"' in body
    assert b"alpha " * 1000 in body and b"x,y\n1,2\n" in body
    principal = TokenCodec(settings, ledger).verify(request.headers["authorization"].removeprefix("Bearer "))
    assert principal.client_id == client_id and "batches:write" in principal.scopes
    assert slept == []


def test_the_pipeline_is_passed_as_a_query_parameter(settings: Settings, ledger: Ledger, client_id: str, files: list[Path]) -> None:
    gateway = Gateway(accepted())
    make(settings, ledger, gateway, []).submit(client_id, files[1:], "k", pipeline="csv_quality")
    assert gateway.requests[0].url.params["pipeline"] == "csv_quality"


def test_the_token_is_reused_until_it_nears_expiry(settings: Settings, ledger: Ledger, client_id: str, files: list[Path]) -> None:
    gateway = Gateway(accepted("one"), accepted("two"))
    client = make(settings, ledger, gateway, [])
    client.submit(client_id, files, "k1")
    client.submit(client_id, files, "k2")
    first, second = (request.headers["authorization"] for request in gateway.requests)
    assert first == second


def test_429_and_503_are_waited_out_as_retry_after_says(
    settings: Settings, ledger: Ledger, client_id: str, files: list[Path]
) -> None:
    gateway = Gateway(
        refused(429, "rate_limited", {"Retry-After": "7"}),
        refused(503, "backlog_full", {"Retry-After": "3"}),
        httpx.ConnectError("connection refused"),
        accepted("late"),
    )
    slept: list[float] = []
    assert make(settings, ledger, gateway, slept).submit(client_id, files, "k") == "late"
    assert slept == [7.0, 3.0, 4.0]  # the network error waits the backoff: 1, 2, then 4 s
    assert {request.headers["idempotency-key"] for request in gateway.requests} == {"k"}
    assert all(b"alpha " * 1000 in body for body in gateway.bodies)  # each attempt sends the file whole


def test_waits_are_capped_and_attempts_bounded(settings: Settings, ledger: Ledger, client_id: str, files: list[Path]) -> None:
    gateway = Gateway(*[refused(503, "broker_unavailable", {"Retry-After": "3600"}) for _ in range(3)])
    slept: list[float] = []
    client = make(settings, ledger, gateway, slept, max_attempts=3, max_wait_seconds=20)
    with pytest.raises(SubmissionUnavailable, match="gave up after 3 attempts: 503 broker_unavailable"):
        client.submit(client_id, files, "k")
    assert slept == [20, 20]
    assert len(gateway.requests) == 3


@pytest.mark.parametrize(
    ("answer", "error", "kind"),
    [
        (refused(400, "empty_file"), "empty_file", SubmissionRefused),
        (refused(413, "file_too_large"), "file_too_large", SubmissionRefused),
        (refused(415, "unsupported_file_type"), "unsupported_file_type", SubmissionRefused),
        (refused(403, "insufficient_scope"), "insufficient_scope", SubmissionRefused),
        (refused(409, "idempotency_conflict"), "idempotency_conflict", IdempotencyConflict),
        (httpx.Response(404, text="not json"), "error", SubmissionRefused),
    ],
)
def test_other_4xx_are_refusals_at_once(
    settings: Settings, ledger: Ledger, client_id: str, files: list[Path], answer: httpx.Response, error: str, kind: type
) -> None:
    slept: list[float] = []
    with pytest.raises(kind) as raised:
        make(settings, ledger, Gateway(answer), slept).submit(client_id, files, "k")
    assert (raised.value.status_code, raised.value.error) == (answer.status_code, error)
    assert slept == []


def test_a_401_gets_one_fresh_token(settings: Settings, ledger: Ledger, client_id: str, files: list[Path]) -> None:
    gateway = Gateway(refused(401, "invalid_token"), accepted("after-401"))
    assert make(settings, ledger, gateway, []).submit(client_id, files, "k") == "after-401"
    gateway = Gateway(refused(401, "invalid_token"), refused(401, "invalid_token"))
    with pytest.raises(SubmissionRefused, match="401 invalid_token"):
        make(settings, ledger, gateway, []).submit(client_id, files, "k")


def test_unknown_and_disabled_clients_are_refused_without_a_request(
    settings: Settings, ledger: Ledger, client_id: str, files: list[Path]
) -> None:
    gateway = Gateway()
    client = make(settings, ledger, gateway, [])
    with pytest.raises(SubmissionRefused, match="no client cl_nobody"):
        client.submit("cl_nobody", files, "k")
    ledger.update_client(client_id, disabled_at=datetime.now(UTC))
    with pytest.raises(SubmissionRefused, match="disabled"):
        client.submit(client_id, files, "k")
    assert gateway.requests == []


def test_a_missing_file_is_an_os_error(settings: Settings, ledger: Ledger, client_id: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        make(settings, ledger, Gateway(accepted()), []).submit(client_id, [tmp_path / "gone.txt"], "k")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("12", 1.0) == 12.0
    assert retry_after_seconds(None, 1.5) == 1.5
    assert retry_after_seconds("soon", 2.0) == 2.0
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after_seconds(in_a_minute, 1.0) <= 60
    assert retry_after_seconds(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True), 1.0) == 0.0


def test_the_signing_secret_is_needed_only_to_submit(ledger: Ledger, client_id: str, files: list[Path], tmp_path: Path) -> None:
    without_secret = Settings.from_env({"CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}"})
    client = SubmissionClient(without_secret, ledger, transport=httpx.MockTransport(Gateway(accepted())))
    with pytest.raises(SettingsError, match="CONVEYOR_JWT_SECRET"):
        client.submit(client_id, files, "k")
