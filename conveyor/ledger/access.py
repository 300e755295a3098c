"""The ledger's access records: clients, token signing keys and revocations."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, Row, delete, insert, or_, select, update

from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.records import ClientRecord, Revocations, SigningKeyRecord
from conveyor.ledger.schema import clients, revoked_tokens, signing_keys


def now() -> datetime:
    return datetime.now(UTC)


def _client(row: Row) -> ClientRecord:
    values = row._asdict()
    values["scopes"] = tuple(values["scopes"].split())
    return ClientRecord(**values)


class UnknownClient(LookupError):
    """No client has this id."""


class AccessLedger:
    engine: Engine

    # Clients

    def create_client(self, name: str, tier: str, scopes: Sequence[str], secret_hash: str) -> ClientRecord:
        statement = insert(clients).returning(*clients.c)
        values = {
            "id": f"cl_{uuid.uuid4().hex}",
            "name": name,
            "tier": tier,
            "scopes": " ".join(scopes),
            "secret_hash": secret_hash,
            "created_at": now(),
        }
        with write_transaction(self.engine) as connection:
            return _client(connection.execute(statement, values).one())

    def get_client(self, client_id: str) -> ClientRecord | None:
        with read_transaction(self.engine) as connection:
            row = connection.execute(select(clients).where(clients.c.id == client_id)).first()
        return _client(row) if row else None

    def list_clients(self) -> list[ClientRecord]:
        with read_transaction(self.engine) as connection:
            return [_client(row) for row in connection.execute(select(clients).order_by(clients.c.created_at))]

    def update_client(self, client_id: str, **changes: object) -> ClientRecord:
        """Change a client and cut off every token issued to it so far: a token
        carries the client's tier and scopes, so it must not outlive a change."""
        with write_transaction(self.engine) as connection:
            row = connection.execute(
                update(clients)
                .where(clients.c.id == client_id)
                .values(**changes, tokens_revoked_before=now())
                .returning(*clients.c)
            ).first()
        if row is None:
            raise UnknownClient(client_id)
        return _client(row)

    # Signing keys

    def signing_keys(self, retired_since: datetime) -> list[SigningKeyRecord]:
        """Keys that still verify: active ones and those retired after ``retired_since``, newest first."""
        query = (
            select(signing_keys)
            .where(or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > retired_since))
            .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid.desc())
        )
        with read_transaction(self.engine) as connection:
            return [SigningKeyRecord(**row._asdict()) for row in connection.execute(query)]

    def rotate_signing_key(self) -> SigningKeyRecord:
        """Add a new active key and retire the others (they verify until their tokens expire)."""
        moment = now()
        key = {"kid": secrets.token_hex(8), "created_at": moment, "retired_at": None}
        with write_transaction(self.engine) as connection:
            connection.execute(update(signing_keys).where(signing_keys.c.retired_at.is_(None)).values(retired_at=moment))
            connection.execute(insert(signing_keys), key)
        return SigningKeyRecord(**key)

    def ensure_signing_key(self) -> None:
        """Create the first key of a new deployment."""
        with write_transaction(self.engine) as connection:
            if connection.execute(select(signing_keys.c.kid).limit(1)).first() is None:
                connection.execute(insert(signing_keys), {"kid": secrets.token_hex(8), "created_at": now()})

    # Revocations

    def revoke_token(self, token_id: str, client_id: str, expires_at: datetime) -> None:
        with write_transaction(self.engine) as connection:
            connection.execute(delete(revoked_tokens).where(revoked_tokens.c.jti == token_id))
            connection.execute(
                insert(revoked_tokens),
                {"jti": token_id, "client_id": client_id, "revoked_at": now(), "expires_at": expires_at},
            )

    def revocations(self) -> Revocations:
        """Revoked token ids not yet expired, and each client's token cut-off."""
        moment = now()
        with read_transaction(self.engine) as connection:
            token_ids = connection.execute(select(revoked_tokens.c.jti).where(revoked_tokens.c.expires_at > moment))
            cut_offs = connection.execute(
                select(clients.c.id, clients.c.tokens_revoked_before).where(clients.c.tokens_revoked_before.is_not(None))
            )
            return Revocations(
                token_ids=frozenset(row.jti for row in token_ids),
                clients_revoked_before={row.id: row.tokens_revoked_before for row in cut_offs},
            )
