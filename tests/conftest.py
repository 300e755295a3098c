"""Fixtures on the real services: a RabbitMQ vhost and a PostgreSQL database per
test (unique names, removed afterwards), SQLite ledgers in temporary
directories, and settings that point a gateway or worker at them."""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from conveyor.credentials import IssuedCredential, register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import upgrade
from conveyor.settings import Settings
from conveyor.tiers import Tiers

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GENEROUS_TIER = {
    "upload_rate": "10000/minute",
    "read_rate": "100000/minute",
    "max_files_per_batch": 500,
    "max_file_bytes": 100 * 1024 * 1024,
    "max_pending_jobs": 100000,
    "retention_days": 7,
}
TIER_PRIORITIES = {"free": 1, "standard": 3, "premium": 6, "enterprise": 9}


def write_tiers_file(path: Path, unauthenticated_rate: str = "10000/minute", **overrides: object) -> Path:
    """A tiers file with the shipped tier names and priorities and generous limits,
    ``overrides`` applied to every tier: tests that are not about limits never hit one."""
    lines = []
    for name, priority in TIER_PRIORITIES.items():
        lines.append(f"[tiers.{name}]\npriority = {priority}")
        lines += [f"{key} = {json.dumps(value)}" for key, value in {**GENEROUS_TIER, **overrides}.items()]
    lines.append(f'[unauthenticated]\nauth_rate = "{unauthenticated_rate}"\nprobe_rate = "{unauthenticated_rate}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def _rabbitmqctl(*arguments: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "--quiet", *arguments], check=check, capture_output=True, timeout=60)


@pytest.fixture
def make_tiers_file(tmp_path: Path) -> Callable[..., Path]:
    """``make_tiers_file(max_file_bytes=1000)``: a tiers file with one limit changed."""
    counter = iter(range(1_000_000))

    def make(**overrides: object) -> Path:
        return write_tiers_file(tmp_path / f"tiers-{next(counter)}.toml", **overrides)

    return make


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Returns a function giving a free TCP port on 127.0.0.1.

    Ports come from below the kernel's ephemeral range: a port the kernel
    hands out for ``bind(0)`` may next become the local end of some outgoing
    connection (to RabbitMQ, say), and a server binding it then fails.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])

    def pick() -> int:
        for _ in range(100):
            port = random.randrange(10_000, low)
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise RuntimeError("no free port found below the ephemeral range")

    return pick


@pytest.fixture
def rabbitmq_url() -> Iterator[str]:
    """A fresh, empty RabbitMQ vhost for this test."""
    vhost = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost, check=False)  # a test may have deleted it already


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test."""
    name = f"conveyor_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both ledger backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def ledger_engine(database_url: str) -> Iterator[Engine]:
    engine = create_ledger_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(ledger_engine: Engine) -> Ledger:
    return Ledger(ledger_engine)


@pytest.fixture
def service_environment(tmp_path: Path, rabbitmq_url: str) -> dict[str, str]:
    """The environment for processes of one test: this process's, minus any
    ``CONVEYOR_*`` of the developer's, plus a SQLite ledger and blobs in the
    test's directory, its own vhost and a random signing secret."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("CONVEYOR_")}
    return {
        **inherited,
        "CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'conveyor.db'}",
        "CONVEYOR_BLOB_DIR": str(tmp_path / "blobs"),
        "CONVEYOR_BROKER_URL": rabbitmq_url,
        "CONVEYOR_JWT_SECRET": secrets.token_urlsafe(48),
        "CONVEYOR_WORKER_THREADS": "4",
        "CONVEYOR_TIERS_FILE": str(write_tiers_file(tmp_path / "tiers.toml")),
        "CONVEYOR_RATE_LIMIT_PREFIX": f"conveyor-test-{uuid.uuid4().hex[:12]}",
    }


@pytest.fixture
def service_settings(service_environment: dict[str, str]) -> Settings:
    settings = Settings.from_env(service_environment)
    engine = create_ledger_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture
def make_client(service_settings: Settings) -> Iterator:
    """Registers clients in the test's ledger: ``make_client(tier="standard")``."""
    engine = create_ledger_engine(service_settings.database_url)
    ledger = Ledger(engine)
    tiers = Tiers.load(service_settings.tiers_file, service_settings.max_priority)

    def make(tier: str = "standard", name: str | None = None) -> IssuedCredential:
        return register_client(ledger, tiers, name or f"client-{uuid.uuid4().hex[:6]}", tier)

    yield make
    engine.dispose()
