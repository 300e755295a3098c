"""A local Conveyor on the embedded defaults: ``make up`` / ``make down``.

It runs the gateway, a worker group consuming every queue, the scheduler and
the directory watcher (watching ``var/inbox`` for the development client).
Everything lives under one state directory (``./var``): the SQLite ledger, the
blob store, the signing secret, a development client credential, the inbox,
the logs and ``stack.json``, which lists the process groups this launcher
started so that ``down`` stops exactly those and nothing else.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import upgrade
from conveyor.processes import (
    ManagedProcess,
    gateway_command,
    instance_metrics,
    reset_metrics_dir,
    scheduler_command,
    start_process,
    wait_until_ready,
    watcher_command,
    worker_command,
    worker_environment,
)
from conveyor.settings import Settings
from conveyor.tiers import Tiers

DEV_CLIENT_NAME = "local-development"
DEV_CLIENT_TIER = "standard"


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

    def log_file(self, name: str) -> Path:
        return self.state_dir / "log" / f"{name}.log"


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


def up(layout: StackLayout, host: str, port: int, base_environment: Mapping[str, str]) -> dict[str, str]:
    """Start the gateway, a worker group, the scheduler and the watcher; returns the URL and a client credential."""
    if _running(layout):
        raise StackError(f"a local stack is already running (see {layout.state_file}); run `make down` first")
    if not _port_is_free(host, port):
        raise StackError(f"{host}:{port} is already in use; pass another port (make up PORT=...)")
    environment = stack_environment(layout, base_environment)
    settings = Settings.from_env(environment)
    engine = create_ledger_engine(settings.database_url)
    upgrade(engine)
    credential = _dev_credential(layout, Ledger(engine), Tiers.load(settings.tiers_file, settings.max_priority))
    engine.dispose()
    url = f"http://{host}:{port}"
    environment["CONVEYOR_GATEWAY_URL"] = url  # where the watcher and directory schedules submit
    layout.inbox.mkdir(parents=True, exist_ok=True)
    watcher_environment = {
        "CONVEYOR_WATCH_DIRECTORIES": environment.get("CONVEYOR_WATCH_DIRECTORIES", str(layout.inbox)),
        "CONVEYOR_WATCH_CLIENT_ID": environment.get("CONVEYOR_WATCH_CLIENT_ID", credential["client_id"]),
    }
    worker = worker_command(settings.worker_processes, settings.worker_threads)
    metrics_port, metrics_dir = instance_metrics(settings, 0)
    reset_metrics_dir(metrics_dir)

    processes: list[ManagedProcess] = []
    try:
        gateway = start_process(
            "gateway", gateway_command(host, port), environment, layout.log_file("gateway"), layout.root
        )
        processes.append(gateway)
        for name, command, extra_environment in (
            ("worker", worker, worker_environment(settings.worker_threads, metrics_port, metrics_dir)),
            ("scheduler", scheduler_command(), {}),
            ("watcher", watcher_command(), watcher_environment),
        ):
            processes.append(
                start_process(name, command, {**environment, **extra_environment}, layout.log_file(name), layout.root)
            )
        wait_until_ready(url, gateway)
        for process in processes:
            if not process.is_running():
                raise StackError(f"{process.name} exited during start-up:\n{process.log_tail()}")
    except BaseException:
        for process in processes:
            process.stop()
        raise
    layout.state_file.write_text(
        json.dumps({"processes": [{"name": p.name, "pid": p.pid, "log": str(p.log_path)} for p in processes]})
    )
    return {"url": url, **credential}


def down(layout: StackLayout) -> list[str]:
    """Stop every process this launcher started; returns their names."""
    processes = _running(layout)
    for process in processes:
        process.stop()
    layout.state_file.unlink(missing_ok=True)
    return [process.name for process in processes]
