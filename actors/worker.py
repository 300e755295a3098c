"""Worker entry point: ``dramatiq actors.worker`` (settings from ``CONVEYOR_*``).

Builds the broker with Dramatiq's default middleware plus the job ledger
(placed before Retries, see :mod:`actors.ledger_middleware`),
installs it as Dramatiq's global broker (the CLI consumes from that one) and
registers every pipeline's actor, the webhook actor and the periodic actors
on it, with the heartbeat middleware.  Start workers per queue with
``--queues``: ``documents``, ``analysis``, ``maintenance``.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Retries

from actors.heartbeat import WorkerHeartbeat
from actors.ledger_middleware import JobLedger
from actors.periodic import PeriodicJobs, register_periodic_actors
from actors.registry import register_actors
from actors.webhooks import WebhookSender, register_webhook_actor
from conveyor.blobs import BlobStore
from conveyor.broker import create_broker
from conveyor.ledger import BatchRecord, Ledger, create_ledger_engine
from conveyor.ledger.maintenance import MaintenanceLedger
from conveyor.ledger.migrate import require_current
from conveyor.pipelines import webhook_message
from conveyor.settings import Settings


def build_worker_broker(settings: Settings) -> RabbitmqBroker:
    engine = create_ledger_engine(settings.database_url)
    require_current(engine)
    ledger = Ledger(engine)
    broker = create_broker(settings, confirm_delivery=False)

    def send_webhook(batch: BatchRecord) -> None:
        broker.enqueue(webhook_message(batch.id))

    broker.add_middleware(JobLedger(ledger, BlobStore(settings.blob_dir), settings, send_webhook), before=Retries)
    register_actors(broker)
    register_webhook_actor(broker, WebhookSender(ledger, settings))
    broker.add_middleware(WorkerHeartbeat(MaintenanceLedger(engine)))
    register_periodic_actors(broker, PeriodicJobs.from_settings(settings, broker, ledger))
    return broker


settings = Settings.from_env()
for logger_name in ("conveyor", "actors"):
    logging.getLogger(logger_name).setLevel(settings.log_level)
broker = build_worker_broker(settings)
dramatiq.set_broker(broker)
