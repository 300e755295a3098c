"""A local Conveyor on the embedded defaults: ``make up`` / ``make down``.

It runs what a server runs: two gateway replicas behind nginx (HTTP and
HTTPS with a self-signed certificate), sharing rate limits in Redis;
Prometheus on the repository's configuration; the autoscaler, which starts
worker instances on its local backend (at least one at once); the scheduler
and the directory watcher (watching ``var/inbox`` for the development client).
Everything lives under one state directory (``./var``): the SQLite ledger,
the blob store, the signing secret, a development client credential, the
inbox, nginx's and Prometheus's files, the worker pid files, the logs and
``stack.json``, which lists the process groups this launcher started so that
``down`` stops exactly those (the autoscaler first, then its workers, drained)
and nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import upgrade
from conveyor.nginx_config import NginxSite, largest_upload_bytes, nginx_command, self_signed_certificate, write_standalone
from conveyor.processes import (
    ManagedProcess,
    gateway_command,
    scheduler_command,
    start_process,
    wait_until_ready,
    watcher_command,
)
from conveyor.prometheus_server import prepare_configuration, prometheus_command
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from conveyor.worker_backends import LocalBackend

DEV_CLIENT_NAME = "local-development"
DEV_CLIENT_TIER = "standard"
GATEWAY_REPLICAS = 2


class StackError(RuntimeError):
    """The local stack cannot be started or stopped as asked."""


@dataclass(frozen=True)
class StackLayout:
    root: Path  # processes run from here (the repository)
    state_dir: Path  # ./var for `make up`

    @property
    def state_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def secret_file(self) -> Path:
        return self.state_dir / "jwt-secret"

    @property
    def credential_file(self) -> Path:
        return self.state_dir / "dev-client.json"

    @property
    def inbox(self) -> Path:
        return self.state_dir / "inbox"

    @property
    def workers_dir(self) -> Path:
        return self.state_dir / "workers"

    def log_file(self, name: str) -> Path:
        return self.state_dir / "log" / f"{name}.log"


@dataclass(frozen=True)
class StackPorts:
    http: int  # nginx: the API
    https: int
    gateways: tuple[int, ...]
    prometheus: int
    autoscaler_metrics: int

    @classmethod
    def from_base(cls, port: int) -> StackPorts:
        """``make up PORT=8000``: nginx on 8000 and 8443, gateways on 8001 and 8002, Prometheus on 9090, autoscaler 9290."""
        return cls(
            http=port,
            https=port + 443,
            gateways=tuple(port + 1 + replica for replica in range(GATEWAY_REPLICAS)),
            prometheus=port + 1090,
            autoscaler_metrics=port + 1290,
        )

    def all(self) -> list[int]:
        return [self.http, self.https, *self.gateways, self.prometheus, self.autoscaler_metrics]


def _read_or_create_secret(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def stack_environment(layout: StackLayout, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus the local defaults for every setting the caller did not set."""
    environment = dict(base)
    environment.setdefault("CONVEYOR_DATABASE_URL", f"sqlite:///{layout.state_dir / 'conveyor.db'}")
    environment.setdefault("CONVEYOR_BLOB_DIR", str(layout.state_dir / "blobs"))
    environment.setdefault("CONVEYOR_WORKER_METRICS_DIR", str(layout.state_dir / "worker-metrics"))
    environment.setdefault("CONVEYOR_RATE_LIMIT_STORAGE", "redis://127.0.0.1:6379/0")  # shared by the replicas
    environment.setdefault("CONVEYOR_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")  # nginx
    environment.setdefault("CONVEYOR_AUTOSCALER_INTERVAL_SECONDS", "5")  # Prometheus scrapes every 5 s here
    environment["CONVEYOR_AUTOSCALER_STATE_DIR"] = str(layout.workers_dir)
    environment["CONVEYOR_AUTOSCALER_WORKER_TARGETS_FILE"] = str(layout.state_dir / "prometheus" / "targets" / "conveyor-worker.json")
    if "CONVEYOR_JWT_SECRET" not in environment:
        environment["CONVEYOR_JWT_SECRET"] = _read_or_create_secret(layout.secret_file)
    return environment


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def _dev_credential(layout: StackLayout, ledger: Ledger, tiers: Tiers) -> dict[str, str]:
    """The development client kept in ``var/``; created on first use or if the ledger lost it."""
    if layout.credential_file.exists():
        saved = json.loads(layout.credential_file.read_text())
        if ledger.get_client(saved["client_id"]) is not None:
            return saved
    issued = register_client(ledger, tiers, DEV_CLIENT_NAME, DEV_CLIENT_TIER)
    credential = {"client_id": issued.client.id, "client_secret": issued.secret, "tier": DEV_CLIENT_TIER}
    descriptor = os.open(layout.credential_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(credential, file)
    return credential


def _running(layout: StackLayout) -> list[ManagedProcess]:
    if not layout.state_file.exists():
        return []
    state = json.loads(layout.state_file.read_text())
    processes = [
        ManagedProcess(name=entry["name"], pid=entry["pid"], log_path=Path(entry["log"]))
        for entry in state["processes"]
    ]
    return [process for process in processes if process.is_running()]


def _workers(layout: StackLayout, environment: Mapping[str, str]) -> LocalBackend:
    return LocalBackend(layout.workers_dir, environment, layout.root)


def _nginx_site(layout: StackLayout, host: str, ports: StackPorts, settings: Settings) -> NginxSite:
    certificate, key = self_signed_certificate(layout.state_dir / "tls", host if host != "127.0.0.1" else "localhost")
    return NginxSite(
        gateways=[f"127.0.0.1:{port}" for port in ports.gateways],
        max_body_bytes=largest_upload_bytes(Tiers.load(settings.tiers_file, settings.max_priority)),
        http_listen=f"{host}:{ports.http}",
        https_listen=f"{host}:{ports.https}",
        certificate=certificate,
        certificate_key=key,
        metrics_path=settings.metrics_path,
    )


def _wait_for_first_worker(workers: LocalBackend, autoscaler: ManagedProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not workers.running():
        if not autoscaler.is_running() or time.monotonic() > deadline:
            raise StackError(f"the autoscaler started no worker:\n{autoscaler.log_tail()}")
        time.sleep(0.2)


def up(layout: StackLayout, host: str, ports: StackPorts, base_environment: Mapping[str, str]) -> dict[str, str]:
    """Start the whole local platform; returns its URLs and a client credential."""
    if _running(layout):
        raise StackError(f"a local stack is already running (see {layout.state_file}); run `make down` first")
    busy = [port for port in ports.all() if not _port_is_free(host, port) or not _port_is_free("127.0.0.1", port)]
    if busy:
        raise StackError(f"port(s) {', '.join(map(str, busy))} already in use; pass another base port (make up PORT=...)")
    environment = stack_environment(layout, base_environment)
    url = f"http://{host}:{ports.http}"
    prometheus_url = f"http://127.0.0.1:{ports.prometheus}"
    environment["CONVEYOR_GATEWAY_URL"] = url  # where the watcher and directory schedules submit
    environment["CONVEYOR_AUTOSCALER_PROMETHEUS_URL"] = prometheus_url
    environment["CONVEYOR_AUTOSCALER_METRICS_PORT"] = str(ports.autoscaler_metrics)
    settings = Settings.from_env(environment)
    engine = create_ledger_engine(settings.database_url)
    upgrade(engine)
    credential = _dev_credential(layout, Ledger(engine), Tiers.load(settings.tiers_file, settings.max_priority))
    engine.dispose()
    layout.inbox.mkdir(parents=True, exist_ok=True)
    watcher_environment = {
        "CONVEYOR_WATCH_DIRECTORIES": environment.get("CONVEYOR_WATCH_DIRECTORIES", str(layout.inbox)),
        "CONVEYOR_WATCH_CLIENT_ID": environment.get("CONVEYOR_WATCH_CLIENT_ID", credential["client_id"]),
    }
    nginx_prefix = layout.state_dir / "nginx"
    nginx_config = write_standalone(_nginx_site(layout, host, ports, settings), nginx_prefix)
    prometheus_config = prepare_configuration(
        layout.state_dir / "prometheus",
        {
            "conveyor-gateway": [f"127.0.0.1:{port}" for port in ports.gateways],
            "rabbitmq": [settings.rabbitmq_metrics_address],
            "rabbitmq-detailed": [settings.rabbitmq_metrics_address],
            "conveyor-autoscaler": [f"127.0.0.1:{ports.autoscaler_metrics}"],
            "prometheus": [f"127.0.0.1:{ports.prometheus}"],
        },
        scrape_interval="5s",
    )
    commands = [
        *(
            (f"gateway-{replica + 1}", gateway_command("127.0.0.1", port), {})
            for replica, port in enumerate(ports.gateways)
        ),
        ("nginx", nginx_command(nginx_config, nginx_prefix), {}),
        (
            "prometheus",
            prometheus_command(prometheus_config, layout.state_dir / "prometheus-data", "127.0.0.1", ports.prometheus),
            {},
        ),
        ("autoscaler", [sys.executable, str(layout.root / "platform" / "autoscaler.py")], {}),
        ("scheduler", scheduler_command(), {}),
        ("watcher", watcher_command(), watcher_environment),
    ]
    _workers(layout, environment).save_settings(environment)
    processes: list[ManagedProcess] = []
    try:
        for name, command, extra_environment in commands:
            processes.append(
                start_process(name, command, {**environment, **extra_environment}, layout.log_file(name), layout.root)
            )
        for process, port in zip(processes, ports.gateways):
            wait_until_ready(f"http://127.0.0.1:{port}", process)
        nginx = next(process for process in processes if process.name == "nginx")
        wait_until_ready(url, nginx)
        autoscaler = next(process for process in processes if process.name == "autoscaler")
        _wait_for_first_worker(_workers(layout, environment), autoscaler)
        for process in processes:
            if not process.is_running():
                raise StackError(f"{process.name} exited during start-up:\n{process.log_tail()}")
    except BaseException:
        _stop_all(layout, processes)
        raise
    layout.state_file.write_text(
        json.dumps({"processes": [{"name": p.name, "pid": p.pid, "log": str(p.log_path)} for p in processes]})
    )
    return {
        "url": url,
        "https_url": f"https://{host}:{ports.https}",
        "prometheus_url": prometheus_url,
        "autoscaler_metrics_url": f"http://127.0.0.1:{ports.autoscaler_metrics}/metrics",
        **credential,
    }


def _stop_all(layout: StackLayout, processes: list[ManagedProcess]) -> list[str]:
    """The autoscaler first (it would replace the workers), then its workers,
    drained, then everything else; returns the names stopped."""
    autoscalers = [process for process in processes if process.name == "autoscaler"]
    stopped = []
    for process in autoscalers:
        process.stop()
        stopped.append(process.name)
    workers = _workers(layout, os.environ)
    for instance in sorted(workers.running(), reverse=True):
        workers.stop(instance)
        stopped.append(f"worker-{instance}")
    for process in processes:
        if process not in autoscalers:
            process.stop()
            stopped.append(process.name)
    return stopped


def down(layout: StackLayout) -> list[str]:
    """Stop every process this launcher started; returns their names."""
    stopped = _stop_all(layout, _running(layout))
    layout.state_file.unlink(missing_ok=True)
    return stopped
