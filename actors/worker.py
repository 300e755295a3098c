"""Worker entry point: ``dramatiq actors.worker`` (settings from ``CONVEYOR_*``).

Builds the broker with Dramatiq's default middleware plus the job ledger
(placed before Retries, see :mod:`actors.ledger_middleware`) and Dramatiq's
Prometheus middleware (port ``dramatiq_prom_port``, directory
``dramatiq_prom_db``: one of each per worker instance, see
:func:`conveyor.processes.worker_instance_environment`),
installs it as Dramatiq's global broker (the CLI consumes from that one) and
registers every pipeline's actor, the webhook actor and the periodic actors
on it, with the heartbeat middleware.  Start workers per queue with
``--queues``: ``documents``, ``analysis``, ``maintenance``.
"""

from __future__ import annotations

import logging
import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Retries
from dramatiq.middleware import prometheus as dramatiq_prometheus

# prometheus_client chooses multiprocess values when it is first imported, so
# the directory Dramatiq's exposition server reads must be set before
# actors.metrics imports it (the launcher sets both; this covers a bare
# `dramatiq actors.worker`).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", dramatiq_prometheus.DB_PATH)

from actors import metrics  # noqa: E402
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
from conveyor.pipelines import PIPELINES, webhook_message
from conveyor.settings import Settings


def build_worker_broker(settings: Settings) -> RabbitmqBroker:
    engine = create_ledger_engine(settings.database_url)
    require_current(engine)
    ledger = Ledger(engine)
    broker = create_broker(settings, confirm_delivery=False)

    def send_webhook(batch: BatchRecord) -> None:
        broker.enqueue(webhook_message(batch.id))

    broker.add_middleware(JobLedger(ledger, BlobStore(settings.blob_dir), settings, send_webhook), before=Retries)
    broker.add_middleware(dramatiq_prometheus.Prometheus())
    register_actors(broker)
    metrics.initialise_series(PIPELINES)
    register_webhook_actor(broker, WebhookSender(ledger, settings))
    broker.add_middleware(WorkerHeartbeat(MaintenanceLedger(engine)))
    register_periodic_actors(broker, PeriodicJobs.from_settings(settings, broker, ledger))
    return broker


settings = Settings.from_env()
for logger_name in ("conveyor", "actors"):
    logging.getLogger(logger_name).setLevel(settings.log_level)
broker = build_worker_broker(settings)
dramatiq.set_broker(broker)
