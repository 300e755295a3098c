"""The gateway application: ``uvicorn --factory gateway.app:create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route

from conveyor.blobs import BlobStore
from conveyor.broker import create_broker
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import require_current
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from gateway.abandoned_batches import sweep_forever
from gateway.access_tokens import TokenCodec
from gateway.endpoints import batches, health, tokens
from gateway.errors import EXCEPTION_HANDLERS
from gateway.publisher import JobPublisher
from gateway.services import GatewayServices

ROUTES = [
    Route("/api/v1/health", health.health, methods=["GET"]),
    Route("/api/v1/ready", health.ready, methods=["GET"]),
    Route("/api/v1/auth/token", tokens.issue_token, methods=["POST"]),
    Route("/api/v1/batches", batches.create_batch, methods=["POST"]),
    Route("/api/v1/batches/{batch_id}", batches.get_batch, methods=["GET"]),
    Route("/api/v1/batches/{batch_id}/results", batches.get_results, methods=["GET"]),
]


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; settings come from the environment unless given.

    Settings, tiers and the schema revision are checked here, before the
    server binds, so a misconfigured replica never starts serving.
    """
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tiers = Tiers.load(settings.tiers_file, settings.max_priority)
    tokens = TokenCodec(settings)
    engine = create_ledger_engine(settings.database_url)
    require_current(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        publisher = JobPublisher(create_broker(settings, confirm_delivery=True))
        ledger = Ledger(engine)
        app.state.services = GatewayServices(
            settings=settings,
            tiers=tiers,
            ledger=ledger,
            blobs=BlobStore(settings.blob_dir),
            tokens=tokens,
            publisher=publisher,
        )
        sweeper = asyncio.create_task(sweep_forever(ledger))
        try:
            yield
        finally:
            sweeper.cancel()
            await publisher.close()
            engine.dispose()

    return Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
