"""The gateway in process (Starlette TestClient, lifespan included) on the
test's own RabbitMQ vhost and SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.settings import Settings
from gateway.app import create_app


@pytest.fixture
def api(service_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(service_settings)) as client:
        yield client


@pytest.fixture
def service_ledger(service_settings: Settings) -> Iterator[Ledger]:
    """The ledger the ``api`` gateway uses, for recording what a worker would."""
    engine = create_ledger_engine(service_settings.database_url)
    yield Ledger(engine)
    engine.dispose()
