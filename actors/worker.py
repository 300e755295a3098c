"""Worker entry point: ``dramatiq actors.worker`` (settings from ``CONVEYOR_*``).

Builds the broker with Dramatiq's default middleware plus the job ledger,
installs it as Dramatiq's global broker (the CLI consumes from that one) and
registers every pipeline's actor on it.
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import default_middleware

from actors.ledger_middleware import JobLedger
from actors.registry import register_actors
from conveyor.blobs import BlobStore
from conveyor.broker import create_broker
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import require_current
from conveyor.settings import Settings


def build_worker_broker(settings: Settings) -> RabbitmqBroker:
    engine = create_ledger_engine(settings.database_url)
    require_current(engine)
    ledger_middleware = JobLedger(Ledger(engine), BlobStore(settings.blob_dir), settings)
    middleware = [m() for m in default_middleware] + [ledger_middleware]
    broker = create_broker(settings, confirm_delivery=False, middleware=middleware)
    register_actors(broker)
    return broker


settings = Settings.from_env()
logging.getLogger("conveyor").setLevel(settings.log_level)
broker = build_worker_broker(settings)
dramatiq.set_broker(broker)
