#!/usr/bin/env python3
"""Ledger schema administration.

    platform/ledger.py migrate    bring the schema to the code's revision
    platform/ledger.py status     print the database and code revisions
"""

from __future__ import annotations

import argparse
import sys

from conveyor.ledger import create_ledger_engine
from conveyor.ledger.migrate import current_revision, head_revision, upgrade
from conveyor.settings import Settings, SettingsError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["migrate", "status"])
    arguments = parser.parse_args()
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    engine = create_ledger_engine(settings.database_url)
    if arguments.command == "migrate":
        upgrade(engine)
    current, head = current_revision(engine), head_revision()
    print(f"database revision: {current or 'none'}; code revision: {head}")
    return 0 if current == head else 1


if __name__ == "__main__":
    sys.exit(main())
