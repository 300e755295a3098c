"""Starting and stopping Conveyor's server processes (gateway, worker group,
scheduler, directory watcher).

Shared by the local stack launcher and the end-to-end tests, so that the tests
run the processes exactly as ``make up`` does.  Each process gets its own
session (process group), so stopping it also stops the children Dramatiq forks.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from conveyor.pipelines import queue_names
from conveyor.settings import Settings

GRACEFUL_STOP_SECONDS = 30.0


def gateway_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "--factory", "gateway.app:create_app",
        "--host", host, "--port", str(port), "--no-access-log",
    ]


def worker_command(
    processes: int, threads: int, queues: Sequence[str] | None = None, modules: Sequence[str] = ("actors.worker",)
) -> list[str]:
    """``dramatiq`` over ``modules`` (``actors.worker`` first; more add actors to its broker)."""
    return [
        sys.executable, "-m", "dramatiq", *modules,
        "--processes", str(processes), "--threads", str(threads),
        "--queues", *(queues or queue_names()),
    ]


def scheduler_command() -> list[str]:
    return [sys.executable, "-m", "actors.scheduler"]


def watcher_command() -> list[str]:
    return [sys.executable, "-m", "watcher"]


def worker_environment(threads: int, metrics_port: int, metrics_dir: Path, metrics_host: str = "127.0.0.1") -> dict[str, str]:
    """The environment of one worker instance (a ``dramatiq`` process group).

    Prefetch equals the thread count: messages held in a worker's buffer no
    longer obey RabbitMQ priorities, so the buffer stays as small as useful.
    Each instance serves its metrics on its own port from its own
    multiprocess directory (shared by its processes); two instances sharing
    either would mix their figures.  prometheus_client reads the directory
    when it is imported, so it is set here, before the process starts.
    """
    return {
        "dramatiq_queue_prefetch": str(threads),
        "dramatiq_prom_host": metrics_host,
        "dramatiq_prom_port": str(metrics_port),
        "dramatiq_prom_db": str(metrics_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


def instance_metrics(settings: Settings, instance: int) -> tuple[int, Path]:
    """Worker instance ``instance``'s metrics port and multiprocess directory."""
    return settings.worker_metrics_port + instance, settings.worker_metrics_dir / str(instance)


def reset_metrics_dir(path: Path) -> None:
    """Empty a worker instance's multiprocess directory before it starts: files
    left by an earlier run would add their old counts to the new ones."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid: int
    log_path: Path

    def is_running(self) -> bool:
        """Whether any process of the group is alive (our own exited child is reaped first)."""
        _reap(self.pid)
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, timeout: float = GRACEFUL_STOP_SECONDS) -> None:
        """SIGTERM the group's leader, then SIGKILL the whole group if anything is left after ``timeout``.

        Only the leader gets SIGTERM: Dramatiq's main process forwards it to its
        worker processes, and a worker process that receives a second SIGTERM
        exits at once instead of finishing its jobs (what systemd's
        ``KillMode=mixed`` does for the same reason)."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.is_running():
            _signal_group(self.pid, signal.SIGKILL)
        _reap(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def start_process(
    name: str, command: Sequence[str], environment: Mapping[str, str], log_path: Path, cwd: Path
) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ManagedProcess(name=name, pid=process.pid, log_path=log_path)


def wait_until_ready(base_url: str, process: ManagedProcess, timeout: float = 60.0) -> None:
    """Poll ``/api/v1/ready`` until it answers 200; raise with the last answer and the log tail."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not process.is_running():
            raise RuntimeError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        try:
            response = httpx.get(f"{base_url}/api/v1/ready", timeout=5.0)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} not ready after {timeout:.0f}s ({last}):\n{process.log_tail()}")
