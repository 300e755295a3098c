"""Short-lived JWT access tokens (python-jose, HS256, every claim required)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from jose import ExpiredSignatureError, JWTError, jwt

from conveyor.ledger import ClientRecord
from conveyor.settings import Settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "jti", "iss", "aud", "sub")


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or for someone else."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proved by a verified token."""

    client_id: str
    tier: str
    scopes: frozenset[str]
    token_id: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    scopes: tuple[str, ...]


class TokenCodec:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.require_jwt_secret()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl = settings.token_ttl_seconds

    def issue(self, client: ClientRecord) -> IssuedToken:
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": client.id,
            "iat": now,
            "exp": now + self._ttl,
            "jti": uuid.uuid4().hex,
            "tier": client.tier,
            "scopes": list(client.scopes),
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(token=token, expires_in=self._ttl, scopes=client.scopes)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={f"require_{claim}": True for claim in REQUIRED_CLAIMS},
            )
        except ExpiredSignatureError:
            raise InvalidToken("token has expired") from None
        except JWTError as error:
            raise InvalidToken(f"token is invalid: {error}") from None
        tier, scopes = claims.get("tier"), claims.get("scopes")
        if not isinstance(tier, str) or not isinstance(scopes, list):
            raise InvalidToken("token is invalid: missing tier or scopes")
        return Principal(client_id=claims["sub"], tier=tier, scopes=frozenset(scopes), token_id=claims["jti"])
