#!/usr/bin/env python3
"""Start or stop a local Conveyor (gateway, worker group, scheduler, watcher) on the embedded defaults.

    platform/stack.py up [--host 127.0.0.1] [--port 8000]
    platform/stack.py down
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from conveyor.local_stack import StackError, StackLayout, down, up
from conveyor.settings import SettingsError

REPOSITORY = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the gateway, a worker group, the scheduler and the watcher; wait until ready")
    start.add_argument("--host", default="127.0.0.1")
    start.add_argument("--port", type=int, default=8000)
    commands.add_parser("down", help="stop what `up` started")
    arguments = parser.parse_args()
    layout = StackLayout(root=REPOSITORY, state_dir=REPOSITORY / "var")
    try:
        if arguments.command == "up":
            print_started(up(layout, arguments.host, arguments.port, os.environ), layout)
        else:
            stopped = down(layout)
            print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    except (StackError, SettingsError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def print_started(started: dict[str, str], layout: StackLayout) -> None:
    url = started["url"]
    print(f"""Conveyor is running at {url}   (logs: {layout.state_dir / 'log'})

client_id:     {started['client_id']}
client_secret: {started['client_secret']}
tier:          {started['tier']}

Try it:
  TOKEN=$(curl -s -d grant_type=client_credentials -d client_id={started['client_id']} \\
      -d client_secret={started['client_secret']} {url}/api/v1/auth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer $TOKEN" -F files=@README.md {url}/api/v1/batches
  curl -s -H "Authorization: Bearer $TOKEN" {url}/api/v1/batches/<id>/results

Files dropped in {layout.inbox} become batches of this client (the watcher).

Stop it with: make down""")


if __name__ == "__main__":
    sys.exit(main())
