"""Where worker instances run: the autoscaler's and ``platform/scale.py``'s backends.

Both backends number instances from 0 and start instance N as
``python -m conveyor.worker_instance N`` (its own metrics port and directory).
Stopping an instance always drains it: SIGTERM to Dramatiq's main process,
which lets every running job finish (Dramatiq's worker shutdown timeout is
10 minutes, the same as the longest job time limit), then waits for the exit.

* :class:`LocalBackend` spawns process groups and keeps ``<N>.pid`` files in a
  directory (the local stack and the tests);
* :class:`SystemdBackend` runs ``systemctl start|stop worker@N`` on a server
  (``systemd/worker@.service``; ``KillMode=mixed`` gives the same drain).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from conveyor.processes import ManagedProcess, start_process
from conveyor.settings import PREFIX, Settings

logger = logging.getLogger("conveyor.workers")

# Longest job (10 min hard limit) plus a margin: a drain never cuts a job short.
DRAIN_SECONDS = 660.0


class BackendError(RuntimeError):
    """A worker instance could not be started, stopped or listed."""


class WorkerBackend(Protocol):
    def running(self) -> list[int]:
        """Numbers of the instances running now, ascending."""

    def start(self, instance: int) -> None:
        """Start instance ``instance`` (no-op if it runs)."""

    def stop(self, instance: int) -> None:
        """Drain and stop instance ``instance``; returns once it has exited."""


def worker_instance_command(instance: int) -> list[str]:
    return [sys.executable, "-m", "conveyor.worker_instance", str(instance)]


class LocalBackend:
    """Worker instances as local process groups; ``state_dir`` holds ``<N>.pid``
    and ``worker-<N>.log``, and may hold the pool's ``environment.json``: the
    ``CONVEYOR_*`` settings every instance of the pool starts with, whoever
    starts it (the autoscaler, or an operator's ``platform/scale.py up``)."""

    def __init__(self, state_dir: Path, environment: Mapping[str, str], cwd: Path) -> None:
        self.state_dir = state_dir
        self.environment = {**environment, **self._saved_settings()}
        self.cwd = cwd

    @property
    def _environment_file(self) -> Path:
        return self.state_dir / "environment.json"

    def _saved_settings(self) -> dict[str, str]:
        try:
            return json.loads(self._environment_file.read_text())
        except FileNotFoundError:
            return {}

    def save_settings(self, environment: Mapping[str, str]) -> None:
        """Make ``environment``'s ``CONVEYOR_*`` settings the pool's (mode 0600: they hold secrets)."""
        settings = {name: value for name, value in environment.items() if name.startswith(PREFIX)}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self._environment_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(settings, file)
        self.environment.update(settings)

    def _process(self, instance: int) -> ManagedProcess | None:
        try:
            pid = int((self.state_dir / f"{instance}.pid").read_text())
        except (OSError, ValueError):
            return None
        return ManagedProcess(name=f"worker-{instance}", pid=pid, log_path=self._log_path(instance))

    def _log_path(self, instance: int) -> Path:
        return self.state_dir / f"worker-{instance}.log"

    def running(self) -> list[int]:
        if not self.state_dir.is_dir():
            return []
        instances = []
        for pid_file in self.state_dir.glob("*.pid"):
            if pid_file.stem.isdigit():
                process = self._process(int(pid_file.stem))
                if process is not None and process.is_running():
                    instances.append(int(pid_file.stem))
                else:
                    pid_file.unlink(missing_ok=True)  # left by an instance that died
        return sorted(instances)

    def start(self, instance: int) -> None:
        if instance in self.running():
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        process = start_process(
            f"worker-{instance}", worker_instance_command(instance), self.environment, self._log_path(instance), self.cwd
        )
        (self.state_dir / f"{instance}.pid").write_text(f"{process.pid}\n")

    def stop(self, instance: int) -> None:
        process = self._process(instance)
        if process is not None:
            process.stop(timeout=DRAIN_SECONDS)
        (self.state_dir / f"{instance}.pid").unlink(missing_ok=True)


class SystemdBackend:
    """Worker instances as ``worker@N.service`` units of the local systemd."""

    UNIT = re.compile(r"^worker@(\d+)\.service$")

    def __init__(self, systemctl: str = "systemctl") -> None:
        self.systemctl = systemctl

    def _run(self, *arguments: str) -> str:
        try:
            completed = subprocess.run(
                [self.systemctl, *arguments], capture_output=True, text=True, timeout=DRAIN_SECONDS + 60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BackendError(f"systemctl {' '.join(arguments)}: {error}") from error
        if completed.returncode != 0:
            raise BackendError(f"systemctl {' '.join(arguments)}: {completed.stderr.strip() or completed.returncode}")
        return completed.stdout

    def running(self) -> list[int]:
        listing = self._run("list-units", "--plain", "--no-legend", "--state=active", "worker@*.service")
        matches = (self.UNIT.match(line.split()[0]) for line in listing.splitlines() if line.strip())
        return sorted(int(match.group(1)) for match in matches if match)

    def start(self, instance: int) -> None:
        self._run("start", f"worker@{instance}.service")

    def stop(self, instance: int) -> None:
        self._run("stop", f"worker@{instance}.service")  # returns when the unit has stopped (drained)


def backend_from_settings(settings: Settings, environment: Mapping[str, str], cwd: Path) -> WorkerBackend:
    """The backend ``CONVEYOR_AUTOSCALER_BACKEND`` names; local instances inherit ``environment``."""
    if settings.autoscaler_backend == "systemd":
        return SystemdBackend()
    return LocalBackend(settings.autoscaler_state_dir, environment, cwd)



def scale_to(backend: WorkerBackend, count: int, changed: Callable[[list[int]], None] = lambda running: None) -> list[int]:
    """Start the lowest free instance numbers, or drain the highest-numbered
    instances one by one, until ``count`` run; ``changed`` hears each new set."""
    running = backend.running()
    if count > len(running):
        free = (number for number in range(count + len(running)) if number not in running)
        for instance in [next(free) for _ in range(count - len(running))]:
            logger.info("starting worker instance %d", instance)
            backend.start(instance)
            running = sorted([*running, instance])
            changed(running)
    else:
        for instance in sorted(running, reverse=True)[: len(running) - count]:
            logger.info("draining worker instance %d", instance)
            backend.stop(instance)
            running = [number for number in running if number != instance]
            changed(running)
            logger.info("worker instance %d stopped", instance)
    return running
