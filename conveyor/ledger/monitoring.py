"""The ledger's figures for monitoring: open batches, pending work, lost webhooks.

Each query reads open rows only, through an index (``ix_batches_finished``
for batches not yet finished, ``ix_jobs_state_started`` for pending jobs,
``ix_batches_webhook_state`` for failed webhooks), so its cost follows the
current backlog, never the size of the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from conveyor.ledger.access import now
from conveyor.ledger.database import read_transaction
from conveyor.ledger.schema import JobState, WebhookState, batches, clients, jobs


@dataclass(frozen=True)
class BacklogFigures:
    open_batches: dict[str, int]  # status → batches not finished
    oldest_pending: dict[str, datetime]  # pipeline → creation of its oldest PENDING job
    pending_jobs: dict[str, int]  # client tier → PENDING jobs
    failed_webhooks: int  # batches whose webhook gave up
    measured_at: datetime


class MonitoringLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def backlog_figures(self) -> BacklogFigures:
        pending = jobs.c.state == JobState.PENDING
        with read_transaction(self.engine) as connection:
            open_batches = connection.execute(
                select(batches.c.status, func.count()).where(batches.c.finished_at.is_(None)).group_by(batches.c.status)
            ).all()
            oldest = connection.execute(
                select(jobs.c.pipeline, func.min(jobs.c.created_at)).where(pending).group_by(jobs.c.pipeline)
            ).all()
            by_tier = connection.execute(
                select(clients.c.tier, func.count())
                .select_from(jobs.join(batches, jobs.c.batch_id == batches.c.id).join(clients))
                .where(pending)
                .group_by(clients.c.tier)
            ).all()
            failed_webhooks = connection.execute(
                select(func.count()).select_from(batches).where(batches.c.webhook_state == WebhookState.FAILED)
            ).scalar_one()
        return BacklogFigures(
            open_batches=dict(open_batches),
            oldest_pending=dict(oldest),
            pending_jobs=dict(by_tier),
            failed_webhooks=failed_webhooks,
            measured_at=now(),
        )
