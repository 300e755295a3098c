"""Client credentials: secret generation, hashing (passlib, argon2) and checks."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from passlib.context import CryptContext

from conveyor.ledger import ClientRecord, Ledger
from conveyor.tiers import Tiers

DEFAULT_SCOPES = ("batches:write", "batches:read")
KNOWN_SCOPES = frozenset(DEFAULT_SCOPES + ("admin",))

_hashing = CryptContext(schemes=["argon2"], deprecated="auto")


@cache
def _dummy_hash() -> str:
    """Verified against for unknown client ids, so that the answer takes as long
    as for a wrong secret and does not reveal which client ids exist."""
    return _hashing.hash(secrets.token_urlsafe(32))


@dataclass(frozen=True)
class IssuedCredential:
    """A new client and its secret; the secret is shown once and never stored."""

    client: ClientRecord
    secret: str


def new_secret_hash() -> tuple[str, str]:
    """A fresh client secret and its argon2 hash."""
    secret = secrets.token_urlsafe(32)
    return secret, _hashing.hash(secret)


def register_client(ledger: Ledger, tiers: Tiers, name: str, tier: str, scopes: Sequence[str] = DEFAULT_SCOPES) -> IssuedCredential:
    tiers[tier]  # raises TierError naming the known tiers
    unknown = set(scopes) - KNOWN_SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))} (known: {', '.join(sorted(KNOWN_SCOPES))})")
    if not name.strip():
        raise ValueError("client name must not be empty")
    secret, secret_hash = new_secret_hash()
    client = ledger.create_client(name=name.strip(), tier=tier, scopes=scopes, secret_hash=secret_hash)
    return IssuedCredential(client=client, secret=secret)


def authenticate_client(ledger: Ledger, client_id: str, secret: str) -> ClientRecord | None:
    """The client if the id exists, is enabled and the secret matches; else ``None``.

    Slow by design (argon2): call it off the event loop.
    """
    client = ledger.get_client(client_id)
    if client is None:
        _hashing.verify(secret, _dummy_hash())
        return None
    if not _hashing.verify(secret, client.secret_hash) or client.disabled_at is not None:
        return None
    return client
