"""What the benchmarks run against: a Conveyor started as ``make up`` starts it
(gateway replicas behind nginx, worker instances), on a RabbitMQ vhost and a
ledger of its own, with the tier limits raised out of the way (still checked
on every request), plus the machine's description for the results."""

from __future__ import annotations

import os
import platform
import re
import secrets
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import pika

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import upgrade
from conveyor.nginx_config import NginxSite, nginx_command, write_standalone
from conveyor.processes import (
    ManagedProcess,
    gateway_command,
    reset_metrics_dir,
    start_process,
    wait_until_ready,
    worker_command,
    worker_environment,
)
from conveyor.settings import Settings
from conveyor.tiers import DEFAULT_TIERS_FILE, Tiers

REPOSITORY = Path(__file__).resolve().parent.parent
UNLIMITED = "100000000/minute"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def machine() -> dict[str, object]:
    def command_version(command: list[str], pattern: str) -> str:
        try:
            output = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
            output += subprocess.run(command, capture_output=True, text=True, timeout=30).stderr
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        found = re.search(pattern, output)
        return found.group(1) if found else "unknown"

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "rabbitmq": command_version(["rabbitmqctl", "version"], r"(\d+\.\d+\.\d+)"),
        "nginx": command_version(["nginx", "-v"], r"nginx/(\S+)"),
        "dramatiq": version("dramatiq"),
        "celery": version("celery"),
        "starlette": version("starlette"),
        "uvicorn": version("uvicorn"),
    }


def _cpu_model() -> str:
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        return "unknown"
    return found.group(1).strip() if found else "unknown"


@contextmanager
def vhost() -> Iterator[str]:
    """A fresh RabbitMQ vhost, deleted afterwards; yields its amqp:// URL."""
    name = f"conveyor-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "--quiet", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "--quiet", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"], check=True, capture_output=True)
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "--quiet", "delete_vhost", name], capture_output=True)


def ready_messages(broker_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def benchmark_tiers(path: Path, max_file_bytes: int = 2 * 2**30) -> Path:
    """The shipped tiers (names, priorities) with every limit raised out of the way."""
    text = DEFAULT_TIERS_FILE.read_text()
    text = re.sub(r'(upload|read|auth|probe)_rate = "[^"]*"', rf'\1_rate = "{UNLIMITED}"', text)
    text = re.sub(r"max_file_bytes = [\d_]+", f"max_file_bytes = {max_file_bytes}", text)
    text = re.sub(r"max_files_per_batch = [\d_]+", "max_files_per_batch = 1000", text)
    text = re.sub(r"max_pending_jobs = [\d_]+", "max_pending_jobs = 100000000", text)
    path.write_text(text)
    return path


def _utc(value: str) -> float:
    """A ledger timestamp (SQLite keeps them as naive UTC text) in seconds since the epoch."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


@dataclass
class Deployment:
    """One running Conveyor: ``url`` is nginx; workers come and go with
    :meth:`start_workers` / :meth:`stop_workers`."""

    directory: Path
    environment: dict[str, str]
    url: str
    gateway_urls: list[str]
    gateways: list[ManagedProcess]
    tokens: dict[str, str] = field(default_factory=dict)  # tier -> bearer token
    workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def database(self) -> Path:
        return self.directory / "ledger.db"

    def headers(self, tier: str = "enterprise") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[tier]}"}

    def submit(self, client: httpx.Client, files: dict[str, bytes], tier: str = "enterprise") -> str:
        response = client.post(
            f"{self.url}/api/v1/batches",
            headers=self.headers(tier),
            files=[("files", (name, content)) for name, content in files.items()],
        )
        if response.status_code != 202:
            raise RuntimeError(f"upload refused: {response.status_code} {response.text}")
        return response.json()["id"]

    def start_workers(self, processes: int, threads: int, instances: int = 1) -> None:
        for instance in range(instances):
            metrics_dir = self.directory / f"worker-metrics-{len(self.workers)}"
            reset_metrics_dir(metrics_dir)
            self.workers.append(
                start_process(
                    f"worker-{len(self.workers)}",
                    worker_command(processes, threads),
                    {**self.environment, **worker_environment(threads, free_port(), metrics_dir)},
                    self.directory / f"worker-{len(self.workers)}.log",
                    REPOSITORY,
                )
            )

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
        try:
            return connection.execute(sql, parameters).fetchall()
        finally:
            connection.close()

    def open_jobs(self, batch_ids: list[str] | None = None) -> int:
        if batch_ids is None:
            return self._query("SELECT count(*) FROM jobs WHERE state IN ('PENDING', 'RUNNING')")[0][0]
        marks = ",".join("?" * len(batch_ids))
        return self._query(
            f"SELECT count(*) FROM jobs WHERE state IN ('PENDING', 'RUNNING') AND batch_id IN ({marks})", tuple(batch_ids)
        )[0][0]

    def wait_until_done(self, timeout: float, batch_ids: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while self.open_jobs(batch_ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.open_jobs(batch_ids)} jobs still open after {timeout:.0f} s")
            if self.workers and not all(worker.is_running() for worker in self.workers):
                raise RuntimeError("a worker exited:\n" + "\n".join(worker.log_tail() for worker in self.workers))
            time.sleep(0.1)

    def jobs(self, batch_ids: list[str]) -> list[dict[str, object]]:
        """Batch, state, attempts and ledger timestamps (seconds since the epoch) of the batches' jobs."""
        marks = ",".join("?" * len(batch_ids))
        rows = self._query(
            f"SELECT batch_id, state, attempts, created_at, started_at, finished_at FROM jobs WHERE batch_id IN ({marks})",
            tuple(batch_ids),
        )
        return [
            {
                "batch_id": batch_id,
                "state": state,
                "attempts": attempts,
                "created": _utc(created),
                "started": _utc(started) if started else None,
                "finished": _utc(finished) if finished else None,
            }
            for batch_id, state, attempts, created, started, finished in rows
        ]


@contextmanager
def deployment(directory: Path, broker_url: str, replicas: int = 2, **settings: str) -> Iterator[Deployment]:
    """Gateway replicas behind nginx (rate limits in Redis), an enterprise and a free client; no workers yet."""
    directory.mkdir(parents=True, exist_ok=True)
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CONVEYOR_")}
    environment.update(
        CONVEYOR_DATABASE_URL=f"sqlite:///{directory / 'ledger.db'}",
        CONVEYOR_BLOB_DIR=str(directory / "blobs"),
        CONVEYOR_BROKER_URL=broker_url,
        CONVEYOR_JWT_SECRET=secrets.token_urlsafe(48),
        CONVEYOR_TIERS_FILE=str(benchmark_tiers(directory / "tiers.toml")),
        CONVEYOR_RATE_LIMIT_STORAGE="redis://127.0.0.1:6379/0",
        CONVEYOR_RATE_LIMIT_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
        CONVEYOR_TRUSTED_PROXIES="127.0.0.1/32",
        CONVEYOR_MAX_READY_MESSAGES="100000000",
        CONVEYOR_LOG_LEVEL="WARNING",
        CONVEYOR_TOKEN_TTL_SECONDS="86400",
        **settings,
    )
    config = Settings.from_env(environment)
    engine = create_ledger_engine(config.database_url)
    upgrade(engine)
    tiers = Tiers.load(config.tiers_file, config.max_priority)
    credentials = {tier: register_client(Ledger(engine), tiers, f"bench-{tier}", tier) for tier in ("enterprise", "premium", "free")}
    engine.dispose()
    gateways, gateway_urls = [], []
    nginx = None
    try:
        for replica in range(replicas):
            port = free_port()
            process = start_process(
                f"gateway-{replica}", gateway_command("127.0.0.1", port), environment, directory / f"gateway-{replica}.log", REPOSITORY
            )
            gateways.append(process)
            gateway_urls.append(f"http://127.0.0.1:{port}")
            wait_until_ready(gateway_urls[-1], process)
        http = free_port()
        site = NginxSite(
            gateways=[url.removeprefix("http://") for url in gateway_urls],
            max_body_bytes=2 * 2**30,
            http_listen=f"127.0.0.1:{http}",
            shield_rate="100000r/s",
            shield_burst=100000,
        )
        prefix = directory / "nginx"
        nginx = start_process("nginx", nginx_command(write_standalone(site, prefix), prefix), {}, prefix / "stdout.log", directory)
        url = f"http://127.0.0.1:{http}"
        wait_until_ready(url, nginx)
        tokens = {}
        for tier, credential in credentials.items():
            tokens[tier] = httpx.post(
                f"{url}/api/v1/auth/token",
                data={"grant_type": "client_credentials", "client_id": credential.client.id, "client_secret": credential.secret},
            ).json()["access_token"]
        running = Deployment(directory, environment, url, gateway_urls, gateways, tokens)
        try:
            yield running
        finally:
            running.stop_workers()
    finally:
        if nginx is not None:
            nginx.stop()
        for process in gateways:
            process.stop()
