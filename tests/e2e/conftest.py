"""Real processes for end-to-end tests: a uvicorn gateway and a Dramatiq worker
group started exactly as ``make up`` starts them, on the test's own vhost and
ledger, stopped when the test ends."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from conveyor.credentials import IssuedCredential
from conveyor.nginx_config import NginxSite, nginx_command, self_signed_certificate, write_standalone
from conveyor.pipelines import queue_names
from conveyor.prometheus_server import prepare_configuration, prometheus_command
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
from process_waits import wait_for

FINAL_STATUSES = {"COMPLETED", "FAILED", "PARTIALLY_COMPLETED", "CANCELLED"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Gateway:
    url: str
    process: ManagedProcess

    def token(self, credential: IssuedCredential) -> str:
        response = httpx.post(
            f"{self.url}/api/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": credential.client.id, "client_secret": credential.secret},
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def upload(self, token: str, files: dict[str, bytes]) -> dict:
        response = httpx.post(
            f"{self.url}/api/v1/batches",
            headers={"Authorization": f"Bearer {token}"},
            files=[("files", (name, content)) for name, content in files.items()],
            timeout=120,
        )
        assert response.status_code == 202, response.text
        return response.json()

    def get(self, token: str, path: str) -> dict:
        response = httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        response.raise_for_status()
        return response.json()

    def jobs(self, token: str, batch_id: str) -> list[dict]:
        """Every job of the batch, following the result pages."""
        jobs, cursor = [], None
        while True:
            query = f"?limit=100&cursor={cursor}" if cursor else "?limit=100"
            page = self.get(token, f"/api/v1/batches/{batch_id}/results{query}")
            jobs += page["jobs"]
            cursor = page["next_cursor"]
            if cursor is None:
                return jobs

    def wait_for_batch(self, token: str, batch_id: str, timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = self.get(token, f"/api/v1/batches/{batch_id}")
            if batch["status"] in FINAL_STATUSES:
                return batch
            time.sleep(0.25)
        raise AssertionError(f"batch {batch_id} not finished after {timeout}s: {batch}")


@pytest.fixture
def start_gateway(
    service_environment: dict[str, str], service_settings: Settings, tmp_path: Path, free_port: Callable[[], int]
) -> Iterator[Callable[..., Gateway]]:
    """Starts gateway replicas (``start_gateway(CONVEYOR_X=...)`` overrides settings); stops them at the end."""
    started: list[ManagedProcess] = []

    def start(**overrides: str) -> Gateway:
        port = free_port()
        process = start_process(
            "gateway",
            gateway_command("127.0.0.1", port),
            {**service_environment, **overrides},
            tmp_path / f"gateway-{len(started)}.log",
            tmp_path,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, process)
        return Gateway(url=url, process=process)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway()


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Nginx:
    url: str
    https_url: str
    process: ManagedProcess


@pytest.fixture
def start_nginx(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., Nginx]]:
    """``start_nginx(gateway_urls, **site overrides)``: nginx on the repository's
    template (HTTP and HTTPS with a self-signed certificate) in front of those
    replicas, returned once a request passes through it (``through=False``: once
    it listens); stopped at the end."""
    started: list[ManagedProcess] = []

    def start(gateway_urls: list[str], through: bool = True, **overrides: object) -> Nginx:
        http, https = free_port(), free_port()
        certificate, key = self_signed_certificate(tmp_path / "tls")
        site = NginxSite(
            **{
                "gateways": [urlsplit(url).netloc for url in gateway_urls],
                "max_body_bytes": 64 * 1024 * 1024,
                "http_listen": f"127.0.0.1:{http}",
                "https_listen": f"127.0.0.1:{https}",
                "certificate": certificate,
                "certificate_key": key,
                **overrides,
            }
        )
        prefix = tmp_path / f"nginx-{len(started)}"
        config = write_standalone(site, prefix)
        process = start_process("nginx", nginx_command(config, prefix), {}, prefix / "stdout.log", tmp_path)
        started.append(process)
        nginx = Nginx(url=f"http://127.0.0.1:{http}", https_url=f"https://127.0.0.1:{https}", process=process)
        if through:
            wait_until_ready(nginx.url, process)
        else:
            wait_for(lambda: _listens(http), 30, "nginx listening", [process])
        return nginx

    yield start
    for process in started:
        process.stop()


@dataclass
class Prometheus:
    url: str
    process: ManagedProcess
    config_dir: Path  # targets/<job>.json here are re-read on change

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params: str) -> object:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def vector(self, expression: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The instant vector of ``expression``: sorted label pairs → value."""
        result = self.api("query", query=expression)["result"]
        return {tuple(sorted(sample["metric"].items())): float(sample["value"][1]) for sample in result}


@pytest.fixture
def start_prometheus(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., Prometheus]]:
    """``start_prometheus({job: [host:port, ...]})`` runs Prometheus on the repository's
    configuration with those targets, scraping every second; stopped at the end."""
    started: list[ManagedProcess] = []

    def start(targets: dict[str, list[str]]) -> Prometheus:
        port = free_port()
        config = prepare_configuration(
            tmp_path / "prometheus", {**targets, "prometheus": [f"127.0.0.1:{port}"]}, scrape_interval="1s"
        )
        process = start_process(
            "prometheus",
            prometheus_command(config, tmp_path / "prometheus-data", "127.0.0.1", port),
            os.environ,
            tmp_path / "prometheus.log",
            tmp_path,
        )
        started.append(process)
        prometheus = Prometheus(url=f"http://127.0.0.1:{port}", process=process, config_dir=config.parent)
        wait_for(prometheus.ready, 30, "Prometheus ready", [process])
        return prometheus

    yield start
    for process in started:
        process.stop()


WORKLOADS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class WorkerInstance(ManagedProcess):
    metrics_url: str = ""  # where this instance's Prometheus metrics are served


@pytest.fixture
def start_worker(
    service_environment: dict[str, str], service_settings: Settings, tmp_path: Path, free_port: Callable[[], int]
) -> Iterator[Callable[..., WorkerInstance]]:
    """Starts a worker instance when the test asks (``workloads=True`` adds the
    test pipelines of ``workloads.py`` and their queue), with its own metrics
    port and multiprocess directory; stops them at the end."""
    started: list[ManagedProcess] = []

    def start(
        workloads: bool = False, threads: int | None = None, queues: list[str] | None = None
    ) -> WorkerInstance:
        threads = threads or service_settings.worker_threads
        metrics_port, metrics_dir = free_port(), tmp_path / f"worker-metrics-{len(started)}"
        reset_metrics_dir(metrics_dir)
        environment = {**service_environment, **worker_environment(threads, metrics_port, metrics_dir)}
        modules = ["actors.worker"]
        if workloads:
            modules.append("workloads")
            queues = [*(queues or queue_names()), "workloads"]
            environment["PYTHONPATH"] = str(WORKLOADS_DIR)
        process = start_process(
            "worker",
            worker_command(processes=1, threads=threads, queues=queues, modules=modules),
            environment,
            tmp_path / f"worker-{len(started)}.log",
            tmp_path,
        )
        started.append(process)
        return WorkerInstance(
            name=process.name, pid=process.pid, log_path=process.log_path, metrics_url=f"http://127.0.0.1:{metrics_port}"
        )

    yield start
    for process in started:
        process.stop()
