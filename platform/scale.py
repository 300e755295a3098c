#!/usr/bin/env python3
"""Manual worker scaling, on the autoscaler's backends.

    platform/scale.py status          running instances and their metrics addresses
    platform/scale.py up N            start N more instances (the lowest free numbers)
    platform/scale.py down N          drain the N highest-numbered instances
    platform/scale.py drain ID        drain and stop instance ID

CONVEYOR_AUTOSCALER_BACKEND picks `local` (pid files in
CONVEYOR_AUTOSCALER_STATE_DIR) or `systemd` (worker@N).  A drain lets running
jobs finish, so `down` and `drain` return when the instances have exited.  A
running autoscaler will correct a manual count at its next decisions; stop it
first (or set its minimum and maximum) to keep a count by hand.  --json prints
the result for scripts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from conveyor.settings import Settings, SettingsError
from conveyor.worker_backends import BackendError, backend_from_settings, scale_to

REPOSITORY = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="list running worker instances")
    for name, text in (("up", "start N more instances"), ("down", "drain the N highest-numbered instances")):
        commands.add_parser(name, help=text).add_argument("count", type=int)
    commands.add_parser("drain", help="drain and stop one instance").add_argument("instance", type=int)
    arguments = parser.parse_args()
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(message)s")
    backend = backend_from_settings(settings, os.environ, REPOSITORY)
    try:
        running = backend.running()
        if arguments.command in ("up", "down"):
            if arguments.count < 0 or arguments.command == "down" and arguments.count > len(running):
                print(f"error: cannot {arguments.command} {arguments.count}: {len(running)} instance(s) run", file=sys.stderr)
                return 2
            change = arguments.count if arguments.command == "up" else -arguments.count
            running = scale_to(backend, len(running) + change)
        elif arguments.command == "drain":
            if arguments.instance not in running:
                print(f"error: instance {arguments.instance} is not running (running: {running})", file=sys.stderr)
                return 1
            backend.stop(arguments.instance)
            running = backend.running()
    except BackendError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    instances = [
        {"instance": number, "metrics": f"127.0.0.1:{settings.worker_metrics_port + number}"} for number in running
    ]
    if arguments.json:
        print(json.dumps({"backend": settings.autoscaler_backend, "instances": instances}))
    else:
        print(f"{len(instances)} worker instance(s) running ({settings.autoscaler_backend} backend)")
        for entry in instances:
            print(f"  worker {entry['instance']}: metrics on {entry['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
