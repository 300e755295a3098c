"""Webhooks end to end inside one process: a real HTTP receiver on a free port,
Dramatiq's StubBroker, a real SQLite ledger.  The receiver checks the
signature exactly as the README tells clients to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from prometheus_client import REGISTRY

from actors import webhooks
from actors.job_context import current_job
from actors.ledger_middleware import JobLedger
from actors.registry import pipeline_actor
from actors.webhooks import WebhookSender, register_webhook_actor
from conveyor.blobs import BlobStore
from conveyor.ledger import Ledger, NewJob
from conveyor.ledger.webhooks import WebhookLedger
from conveyor.pipelines import WEBHOOKS, PipelineRoute, webhook_message
from conveyor.settings import Settings
from conveyor.webhook_signing import InvalidSignature, verify, webhook_secret
from webhook_receiver import Receiver

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SECRET = "s" * 40


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    with Receiver.running(failures=request.param) as server:
        yield server


@pytest.fixture
def broker(ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubBroker]:
    monkeypatch.setattr(webhooks, "MIN_BACKOFF_MS", 10)
    monkeypatch.setattr(webhooks, "MAX_BACKOFF_MS", 20)
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    settings = Settings.from_env({"CONVEYOR_JWT_SECRET": SECRET})
    broker = StubBroker()

    def send_webhook(batch) -> None:
        broker.enqueue(webhook_message(batch.id))

    broker.add_middleware(JobLedger(ledger, BlobStore(tmp_path / "blobs"), settings, send_webhook), before=Retries)
    register_webhook_actor(broker, WebhookSender(ledger, settings))
    worker = dramatiq.Worker(broker, worker_timeout=20, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()
    broker.close()


def _finish_batch(ledger: Ledger, broker: StubBroker, callback_url: str):
    client = ledger.create_client(name="c", tier="free", scopes=[], secret_hash="x")
    job = NewJob(pipeline="document", filename="f.txt", blob_sha256="b" * 64, size_bytes=1)
    batch, jobs = ledger.create_batch(client.id, 1, [job, job], callback_url=callback_url)

    def quick(job_id: str) -> None:
        current_job().result = {"ok": True}

    actor = pipeline_actor(quick, broker, PipelineRoute(queue_name="t", actor_name="quick"))
    for job in jobs:
        actor.send(job_id=job.id)
    broker.join("t", timeout=10_000)
    broker.join(WEBHOOKS.queue_name, timeout=10_000, fail_fast=False)
    return client, batch


def _outcomes() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("conveyor_webhook_deliveries_total", {"outcome": outcome}) or 0.0
        for outcome in ("delivered", "failed", "gave_up")
    }


def _grown(before: dict[str, float]) -> dict[str, float]:
    return {outcome: count - before[outcome] for outcome, count in _outcomes().items()}


@pytest.mark.parametrize("receiver", [1], indirect=True)
def test_a_signed_summary_is_delivered_after_a_failed_attempt(ledger: Ledger, broker, receiver: Receiver) -> None:
    before = _outcomes()
    client, batch = _finish_batch(ledger, broker, receiver.url)
    assert len(receiver.received) == 2
    body, signature = receiver.received[-1]
    verify(webhook_secret(SECRET, client.id), signature, body)
    with pytest.raises(InvalidSignature):
        verify(webhook_secret(SECRET, "someone-else"), signature, body)
    summary = json.loads(body)
    assert summary["event"] == "batch.finished"
    assert (summary["batch"]["id"], summary["batch"]["status"]) == (batch.id, "COMPLETED")
    assert summary["batch"]["counts"]["succeeded"] == 2
    attempts = WebhookLedger(ledger.engine).attempts(batch.id)
    assert [(a.attempt, a.status_code, a.delivered) for a in attempts] == [(1, 500, False), (2, 204, True)]
    assert ledger.find_batch(batch.id).webhook_state == "DELIVERED"
    broker.enqueue(webhook_message(batch.id))  # a redelivered message sends nothing more
    broker.join(WEBHOOKS.queue_name, timeout=10_000)
    assert len(receiver.received) == 2
    assert _grown(before) == {"delivered": 1, "failed": 1, "gave_up": 0}


@pytest.mark.parametrize("receiver", [100], indirect=True)
def test_a_receiver_that_keeps_failing_is_given_up_on_after_the_last_attempt(
    ledger: Ledger, broker, receiver: Receiver
) -> None:
    before = _outcomes()
    _, batch = _finish_batch(ledger, broker, receiver.url)
    attempts = WebhookLedger(ledger.engine).attempts(batch.id)
    assert [(a.attempt, a.error) for a in attempts] == [(1, "HTTP 500"), (2, "HTTP 500"), (3, "HTTP 500")]
    assert ledger.find_batch(batch.id).webhook_state == "FAILED"
    assert _grown(before) == {"delivered": 0, "failed": 2, "gave_up": 1}
