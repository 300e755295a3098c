#!/usr/bin/env python3
"""Client credentials and token administration.

    platform/tokens.py issue --name NAME --tier TIER [--scope SCOPE ...]
    platform/tokens.py list
    platform/tokens.py revoke (--client CLIENT_ID | --jti TOKEN_ID)
    platform/tokens.py rotate-secret --client CLIENT_ID
    platform/tokens.py set-tier --client CLIENT_ID --tier TIER
    platform/tokens.py disable --client CLIENT_ID
    platform/tokens.py rotate-key

Every command takes --json for scripts.  A secret is printed once, by
`issue` or `rotate-secret`, and only its argon2 hash is stored.  Changing a
client (revoke, rotate-secret, set-tier, disable) cuts off every token issued
to it so far; gateways apply revocations within a second.  Settings come from
``CONVEYOR_*`` (the ledger URL above all).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.credentials import DEFAULT_SCOPES, new_secret_hash, register_client
from conveyor.ledger import ClientRecord, Ledger, create_ledger_engine
from conveyor.ledger.access import UnknownClient
from conveyor.ledger.migrate import SchemaOutOfDate, require_current
from conveyor.settings import Settings, SettingsError
from conveyor.tiers import TierError, Tiers


def client_fields(client: ClientRecord) -> dict[str, Any]:
    return {
        "client_id": client.id,
        "name": client.name,
        "tier": client.tier,
        "scopes": list(client.scopes),
        "created_at": client.created_at.isoformat(),
        "disabled_at": client.disabled_at.isoformat() if client.disabled_at else None,
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    commands = parser.add_subparsers(dest="command", required=True)
    issue = commands.add_parser("issue", help="create a client and print its credential once")
    issue.add_argument("--name", required=True)
    issue.add_argument("--tier", required=True)
    issue.add_argument("--scope", action="append", dest="scopes", help=f"repeatable; default: {' '.join(DEFAULT_SCOPES)}")
    commands.add_parser("list", help="list clients (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke one token, or every token of a client")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--client")
    target.add_argument("--jti")
    rotate = commands.add_parser("rotate-secret", help="give a client a new secret, printed once")
    rotate.add_argument("--client", required=True)
    set_tier = commands.add_parser("set-tier", help="move a client to another tier")
    set_tier.add_argument("--client", required=True)
    set_tier.add_argument("--tier", required=True)
    disable = commands.add_parser("disable", help="stop a client from signing in")
    disable.add_argument("--client", required=True)
    commands.add_parser("rotate-key", help="start signing tokens with a new key")
    for subparser in commands.choices.values():
        subparser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    return parser.parse_args()


def run(arguments: argparse.Namespace, ledger: Ledger, settings: Settings) -> dict[str, Any]:
    """Carry out the command; returns what to print."""
    tiers = Tiers.load(settings.tiers_file, settings.max_priority)
    if arguments.command == "issue":
        issued = register_client(ledger, tiers, arguments.name, arguments.tier, arguments.scopes or DEFAULT_SCOPES)
        return {**client_fields(issued.client), "client_secret": issued.secret}
    if arguments.command == "list":
        return {"clients": [client_fields(client) for client in ledger.list_clients()]}
    if arguments.command == "revoke" and arguments.jti:
        expires_at = datetime.now(UTC) + timedelta(seconds=settings.token_ttl_seconds)
        ledger.revoke_token(arguments.jti, "", expires_at)
        return {"revoked": {"jti": arguments.jti}}
    if arguments.command == "revoke":
        ledger.update_client(arguments.client)
        return {"revoked": {"client_id": arguments.client}}
    if arguments.command == "rotate-secret":
        secret, secret_hash = new_secret_hash()
        client = ledger.update_client(arguments.client, secret_hash=secret_hash)
        return {**client_fields(client), "client_secret": secret}
    if arguments.command == "set-tier":
        tiers[arguments.tier]  # raises TierError naming the known tiers
        return client_fields(ledger.update_client(arguments.client, tier=arguments.tier))
    if arguments.command == "disable":
        return client_fields(ledger.update_client(arguments.client, disabled_at=datetime.now(UTC)))
    key = ledger.rotate_signing_key()
    return {"kid": key.kid, "previous_keys_verify_until": (key.created_at + timedelta(seconds=settings.token_ttl_seconds)).isoformat()}


def print_human(result: dict[str, Any]) -> None:
    rows = result.get("clients", [result])
    for row in rows:
        print("  ".join(f"{key}={' '.join(value) if isinstance(value, list) else value}" for key, value in row.items()))
    if "client_secret" in result:
        print("The secret is shown once; store it now.", file=sys.stderr)


def main() -> int:
    arguments = parse_arguments()
    try:
        settings = Settings.from_env()
        engine = create_ledger_engine(settings.database_url)
        require_current(engine)
        result = run(arguments, Ledger(engine), settings)
    except UnknownClient as error:
        print(f"error: no client {error}", file=sys.stderr)
        return 1
    except (SettingsError, SchemaOutOfDate, TierError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if arguments.json:
        print(json.dumps(result))
    else:
        print_human(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
