"""Webhook deliveries: which ended batches still owe their callback, and every attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, insert, select, update

from conveyor.ledger.access import now
from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.schema import WebhookState, batches, webhook_deliveries


@dataclass(frozen=True)
class WebhookAttempt:
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    delivered: bool


class WebhookLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending_batches(self, finished_before: datetime) -> list[str]:
        """Ended batches whose webhook is still owed, ended before ``finished_before``."""
        with read_transaction(self.engine) as connection:
            rows = connection.execute(
                select(batches.c.id).where(
                    batches.c.webhook_state == WebhookState.PENDING, batches.c.finished_at < finished_before
                )
            )
            return [row.id for row in rows]

    def record_attempt(self, batch_id: str, status_code: int | None, error: str | None, delivered: bool) -> int:
        """Record one attempt; returns its number (1 for the first)."""
        with write_transaction(self.engine) as connection:
            attempt = 1 + connection.execute(
                select(func.count()).select_from(webhook_deliveries).where(webhook_deliveries.c.batch_id == batch_id)
            ).scalar_one()
            connection.execute(
                insert(webhook_deliveries).values(
                    batch_id=batch_id,
                    attempt=attempt,
                    attempted_at=now(),
                    status_code=status_code,
                    error=error,
                    delivered=delivered,
                )
            )
            if delivered:
                self._settle(connection, batch_id, WebhookState.DELIVERED)
        return attempt

    def give_up(self, batch_id: str) -> None:
        with write_transaction(self.engine) as connection:
            self._settle(connection, batch_id, WebhookState.FAILED)

    @staticmethod
    def _settle(connection, batch_id: str, state: WebhookState) -> None:  # type: ignore[no-untyped-def]
        connection.execute(
            update(batches)
            .where(batches.c.id == batch_id, batches.c.webhook_state == WebhookState.PENDING)
            .values(webhook_state=state)
        )

    def attempts(self, batch_id: str) -> list[WebhookAttempt]:
        with read_transaction(self.engine) as connection:
            rows = connection.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.batch_id == batch_id)
                .order_by(webhook_deliveries.c.attempt)
            )
            return [
                WebhookAttempt(row.attempt, row.attempted_at, row.status_code, row.error, row.delivered) for row in rows
            ]
