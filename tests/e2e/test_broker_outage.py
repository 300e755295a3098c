"""RabbitMQ goes away in the middle of a batch and comes back.

The gateway and the worker reach RabbitMQ through a TCP proxy the test cuts
(the shared RabbitMQ keeps running).  While the broker is away the gateway
answers 503 (never 500) and queues nothing; afterwards the worker reconnects
and every job that was accepted completes exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from conveyor.settings import Settings
from tcp_proxy import TcpProxy


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(("127.0.0.1", 5672))
    yield proxy
    proxy.close()


def _through(proxy: TcpProxy, broker_url: str) -> str:
    parts = urlsplit(broker_url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"))


def _documents(prefix: str, count: int) -> dict[str, bytes]:
    return {f"{prefix}-{n}.txt": f"document {prefix} number {n} ".encode() * 50 for n in range(count)}


def test_the_gateway_answers_503_while_rabbitmq_is_away_and_accepted_work_completes(
    proxy: TcpProxy, start_gateway, start_worker, make_client, service_environment: dict[str, str],
    service_settings: Settings,
) -> None:
    broker_url = _through(proxy, service_settings.broker_url)
    service_environment["CONVEYOR_BROKER_URL"] = broker_url  # the worker's too
    gateway = start_gateway(CONVEYOR_BROKER_URL=broker_url)
    token = gateway.token(make_client(tier="standard"))
    headers = {"Authorization": f"Bearer {token}"}
    before = gateway.upload(token, _documents("before", 300))
    start_worker(threads=1)
    while gateway.get(token, f"/api/v1/batches/{before['id']}")["counts"]["succeeded"] < 10:
        time.sleep(0.05)

    proxy.cut()
    assert gateway.get(token, f"/api/v1/batches/{before['id']}")["counts"]["pending"] > 0  # mid-batch
    answers = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        files = [("files", (name, content)) for name, content in _documents(f"during{len(answers)}", 3).items()]
        response = httpx.post(f"{gateway.url}/api/v1/batches", headers=headers, files=files, timeout=60)
        answers.append((response.status_code, response.json().get("error")))
        time.sleep(0.3)
    assert {status for status, _ in answers} <= {202, 503}, answers
    assert (503, "broker_unavailable") in answers
    assert answers[-1] == (503, "broker_unavailable")  # once noticed, refused until the broker is back
    ready = httpx.get(f"{gateway.url}/api/v1/ready", timeout=30)
    assert ready.status_code == 503

    proxy.restore()
    deadline = time.monotonic() + 60
    while httpx.get(f"{gateway.url}/api/v1/ready", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not reconnect to RabbitMQ"
        time.sleep(0.5)
    after = gateway.upload(token, _documents("after", 10))

    accepted = [before["id"], after["id"]]
    for batch_id in accepted:
        final = gateway.wait_for_batch(token, batch_id, timeout=180)
        assert final["status"] == "COMPLETED", final
        jobs = gateway.jobs(token, batch_id)
        assert all(job["state"] == "SUCCEEDED" for job in jobs)
    refused = gateway.get(token, "/api/v1/batches?limit=100")["batches"]
    for batch in refused:
        if batch["id"] not in accepted:  # a batch recorded before the publisher noticed: cancelled, never run
            assert batch["status"] == "CANCELLED" and batch["counts"]["succeeded"] == 0
