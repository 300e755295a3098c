#!/usr/bin/env python3
"""Start and drain worker instances from the load Prometheus sees.

    platform/autoscaler.py [--dry-run] [--once]

Every CONVEYOR_AUTOSCALER_INTERVAL_SECONDS it reads the ready backlog, the
arrival rate, each worker's completion rate, the jobs in progress and the
workers up from CONVEYOR_AUTOSCALER_PROMETHEUS_URL, decides (see
conveyor/scaling_policy.py) and acts through CONVEYOR_AUTOSCALER_BACKEND
(`local` process groups or systemd's `worker@N`).  --dry-run logs every
decision and its inputs and changes nothing.  Its own metrics are served on
CONVEYOR_AUTOSCALER_METRICS_PORT.  SIGTERM stops it after the current step;
the workers it started keep running.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from conveyor.autoscaler import Autoscaler, AutoscalerMetrics, write_worker_targets
from conveyor.broker import broker_vhost
from conveyor.prometheus_load import PrometheusLoadReader
from conveyor.scaling_policy import ScaleDecider, ScalingPolicy
from conveyor.settings import Settings, SettingsError
from conveyor.worker_backends import backend_from_settings

REPOSITORY = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="log decisions and their inputs; start and stop nothing")
    parser.add_argument("--once", action="store_true", help="take one decision and exit")
    arguments = parser.parse_args()
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per query otherwise

    registry = CollectorRegistry()
    metrics = AutoscalerMetrics(registry)
    policy = ScalingPolicy(
        min_workers=settings.autoscaler_min_workers,
        max_workers=settings.autoscaler_max_workers,
        target_backlog_per_worker=settings.autoscaler_target_backlog_per_worker,
        tolerance=settings.autoscaler_tolerance,
        stabilization_seconds=settings.autoscaler_stabilization_seconds,
        max_step=settings.autoscaler_max_step,
    )
    targets_file = settings.autoscaler_worker_targets_file
    autoscaler = Autoscaler(
        PrometheusLoadReader(settings.autoscaler_prometheus_url, broker_vhost(settings.broker_url)),
        ScaleDecider(policy),
        backend_from_settings(settings, os.environ, REPOSITORY),
        metrics,
        worker_targets=partial(write_worker_targets, targets_file, metrics_port=settings.worker_metrics_port)
        if targets_file
        else None,
        dry_run=arguments.dry_run,
    )
    if arguments.once:
        return 0 if autoscaler.step() is not None else 1

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    start_http_server(settings.autoscaler_metrics_port, addr="127.0.0.1", registry=registry)
    logging.getLogger("conveyor.autoscaler").info(
        "autoscaling between %d and %d workers every %g s (%s backend%s); metrics on :%d",
        policy.min_workers, policy.max_workers, settings.autoscaler_interval_seconds, settings.autoscaler_backend,
        ", dry run" if arguments.dry_run else "", settings.autoscaler_metrics_port,
    )
    autoscaler.run(settings.autoscaler_interval_seconds, stopping.is_set)
    return 0


if __name__ == "__main__":
    sys.exit(main())
