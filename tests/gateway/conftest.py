"""The gateway in process (Starlette TestClient, lifespan included) on the
test's own RabbitMQ vhost and SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.settings import Settings
from conveyor.tiers import Tiers
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


@pytest.fixture
def admin(api: TestClient, service_settings: Settings) -> dict[str, str]:
    """Headers of an operator (admin scope)."""
    engine = create_ledger_engine(service_settings.database_url)
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)
    operator = register_client(Ledger(engine), tiers, "operator", "enterprise", ["admin", "batches:read"])
    engine.dispose()
    return {"Authorization": f"Bearer {api.app.state.services.tokens.issue(operator.client).token}"}
