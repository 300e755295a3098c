#!/usr/bin/env python3
"""Start or stop a local Conveyor on the embedded defaults: two gateway
replicas behind nginx, Prometheus, the autoscaler and its workers, the
scheduler and the watcher.

    platform/stack.py up [--host 127.0.0.1] [--port 8000]
    platform/stack.py down

With --port P: nginx serves HTTP on P and HTTPS on P+443, the gateways listen
on P+1 and P+2, Prometheus on P+1090 and the autoscaler's metrics on P+1290.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from conveyor.local_stack import StackError, StackLayout, StackPorts, down, up
from conveyor.settings import SettingsError

REPOSITORY = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the whole local platform; wait until it serves")
    start.add_argument("--host", default="127.0.0.1")
    start.add_argument("--port", type=int, default=8000)
    commands.add_parser("down", help="stop what `up` started")
    arguments = parser.parse_args()
    layout = StackLayout(root=REPOSITORY, state_dir=REPOSITORY / "var")
    try:
        if arguments.command == "up":
            print_started(up(layout, arguments.host, StackPorts.from_base(arguments.port), os.environ), layout)
        else:
            stopped = down(layout)
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    except (StackError, SettingsError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def print_started(started: dict[str, str], layout: StackLayout) -> None:
    url = started["url"]
    print(f"""Conveyor is running at {url}   (HTTPS, self-signed: {started['https_url']})

client_id:     {started['client_id']}
client_secret: {started['client_secret']}
tier:          {started['tier']}

Try it:
  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={started['client_id']} \\
      -d client_secret={started['client_secret']} {url}/api/v1/auth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer $TOKEN" -F files=@README.md {url}/api/v1/batches
  curl -s -H "Authorization: Bearer $TOKEN" {url}/api/v1/batches/<id>/results

Dashboard:     {url}/dashboard   (sign in with an admin credential: platform/tokens.py issue --name ops --tier enterprise --scope admin)
Prometheus:    {started['prometheus_url']}   (targets, alerts, the autoscaler's inputs)
Autoscaler:    {started['autoscaler_metrics_url']}   (decisions in {layout.log_file('autoscaler')})
Workers:       platform/scale.py status   (CONVEYOR_AUTOSCALER_STATE_DIR={layout.workers_dir})
Logs:          {layout.state_dir / 'log'}
Files dropped in {layout.inbox} become batches of this client (the watcher).

Stop it with: make down""")


if __name__ == "__main__":
    sys.exit(main())
