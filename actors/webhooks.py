"""The ``deliver_webhook`` actor: POST an ended batch's summary to its callback URL.

The body is signed (see :mod:`conveyor.webhook_signing`); every attempt is
recorded in the ledger with its status code or error.  A failed attempt is
retried by Dramatiq with exponential backoff and jitter until
``MAX_ATTEMPTS``, then the batch's webhook is marked FAILED.  A 2xx answer
delivers it; a redelivered message for a delivered webhook sends nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import dramatiq
import httpx

from actors.metrics import WEBHOOK_DELIVERIES
from conveyor.ledger import BatchRecord, Ledger
from conveyor.ledger.schema import WebhookState
from conveyor.ledger.webhooks import WebhookLedger
from conveyor.pipelines import WEBHOOKS
from conveyor.settings import Settings
from conveyor.webhook_signing import SIGNATURE_HEADER, sign, webhook_secret

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 5 * 60_000
TIMEOUT_SECONDS = 10.0
EVENT = "batch.finished"


class WebhookNotDelivered(Exception):
    """The receiver did not answer 2xx; the attempt is retried later."""


def webhook_body(batch: BatchRecord) -> bytes:
    summary: dict[str, Any] = {
        "event": EVENT,
        "batch": {
            "id": batch.id,
            "status": batch.status,
            "status_reason": batch.status_reason,
            "counts": {
                "total": batch.total_jobs,
                "succeeded": batch.succeeded_jobs,
                "failed": batch.failed_jobs,
                "cancelled": batch.cancelled_jobs,
            },
            "created_at": batch.created_at.isoformat(),
            "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
            "links": {"self": f"/api/v1/batches/{batch.id}", "results": f"/api/v1/batches/{batch.id}/results"},
        },
    }
    return json.dumps(summary, separators=(",", ":")).encode()


class WebhookSender:
    def __init__(self, ledger: Ledger, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.ledger = ledger
        self.webhooks = WebhookLedger(ledger.engine)
        self.master_secret = settings.require_jwt_secret()
        self.http = httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=transport)

    def deliver(self, batch_id: str) -> None:
        batch = self.ledger.find_batch(batch_id)
        if batch is None or batch.webhook_state != WebhookState.PENDING or batch.callback_url is None:
            return
        body = webhook_body(batch)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Conveyor-Webhook/1",
            "Conveyor-Event": EVENT,
            "Conveyor-Delivery": batch.id,
            SIGNATURE_HEADER: sign(webhook_secret(self.master_secret, batch.client_id), body),
        }
        status_code, error = None, None
        try:
            response = self.http.post(batch.callback_url, content=body, headers=headers)
            status_code = response.status_code
            if not response.is_success:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        attempt = self.webhooks.record_attempt(batch.id, status_code, error, delivered=error is None)
        if error is None:
            WEBHOOK_DELIVERIES.labels("delivered").inc()
            return
        if attempt >= MAX_ATTEMPTS:
            logger.warning("webhook of batch %s failed %d times; giving up: %s", batch.id, attempt, error)
            self.webhooks.give_up(batch.id)
            WEBHOOK_DELIVERIES.labels("gave_up").inc()
            return
        WEBHOOK_DELIVERIES.labels("failed").inc()
        raise WebhookNotDelivered(f"attempt {attempt} of the webhook of batch {batch.id}: {error}")


def register_webhook_actor(broker: dramatiq.Broker, sender: WebhookSender) -> dramatiq.Actor:
    return dramatiq.actor(
        sender.deliver,
        broker=broker,
        queue_name=WEBHOOKS.queue_name,
        actor_name=WEBHOOKS.actor_name,
        max_retries=MAX_ATTEMPTS,
        min_backoff=MIN_BACKOFF_MS,
        max_backoff=MAX_BACKOFF_MS,
        time_limit=int(TIMEOUT_SECONDS * 3 * 1000),
    )
