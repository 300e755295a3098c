"""Run worker instance N: ``python -m conveyor.worker_instance N``.

An instance is one ``dramatiq`` process group consuming every job queue, with
the metrics port and wiped multiprocess directory of its number
(:func:`conveyor.processes.instance_metrics`).  systemd's ``worker@N`` and the
autoscaler's local backend both start instances this way; the process
replaces itself with Dramatiq, so SIGTERM reaches Dramatiq's main process,
which drains its worker processes before exiting.
"""

from __future__ import annotations

import argparse
import os
import sys

from conveyor.processes import instance_metrics, reset_metrics_dir, worker_command, worker_environment
from conveyor.settings import Settings, SettingsError


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run worker instance N (its own metrics port and directory).")
    parser.add_argument("instance", type=int, help="instance number, 0 or more")
    instance = parser.parse_args(arguments).instance
    if instance < 0:
        parser.error("the instance number must be 0 or more")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    metrics_port, metrics_dir = instance_metrics(settings, instance)
    reset_metrics_dir(metrics_dir)
    command = worker_command(settings.worker_processes, settings.worker_threads)
    environment = {**os.environ, **worker_environment(settings.worker_threads, metrics_port, metrics_dir)}
    os.execve(command[0], command, environment)


if __name__ == "__main__":
    sys.exit(main())
