#!/usr/bin/env python3
"""Client credentials administration.

    platform/tokens.py issue --name NAME --tier TIER [--scope SCOPE ...] [--json]

Creates a client and prints its id and secret once; only the secret's argon2
hash is stored.  Settings come from ``CONVEYOR_*`` (the ledger URL above all).
"""

from __future__ import annotations

import argparse
import json
import sys

from conveyor.credentials import DEFAULT_SCOPES, register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import SchemaOutOfDate, require_current
from conveyor.settings import Settings, SettingsError
from conveyor.tiers import Tiers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="create a client and print its credential once")
    issue.add_argument("--name", required=True)
    issue.add_argument("--tier", required=True)
    issue.add_argument("--scope", action="append", dest="scopes", help=f"repeatable; default: {' '.join(DEFAULT_SCOPES)}")
    issue.add_argument("--json", action="store_true", help="print JSON for scripts")
    arguments = parser.parse_args()
    try:
        settings = Settings.from_env()
        engine = create_ledger_engine(settings.database_url)
        require_current(engine)
        tiers = Tiers.load(settings.tiers_file, settings.max_priority)
        issued = register_client(Ledger(engine), tiers, arguments.name, arguments.tier, arguments.scopes or DEFAULT_SCOPES)
    except (SettingsError, SchemaOutOfDate, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    credential = {
        "client_id": issued.client.id,
        "client_secret": issued.secret,
        "name": issued.client.name,
        "tier": issued.client.tier,
        "scopes": list(issued.client.scopes),
    }
    if arguments.json:
        print(json.dumps(credential))
    else:
        print("\n".join(f"{key}: {' '.join(value) if isinstance(value, list) else value}" for key, value in credential.items()))
        print("The secret is shown once; store it now.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
