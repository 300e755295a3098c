"""Short-lived JWT access tokens (python-jose, HS256, every claim required).

Tokens name their signing key in the ``kid`` header.  Each key is derived from
``CONVEYOR_JWT_SECRET`` and the kid (HMAC-SHA256), so the ledger only lists
kids and never holds key material.  Rotating adds a kid and retires the
others; a retired key verifies until the last token it signed has expired.

Revocations (single tokens by ``jti``, or everything issued to a client before
a cut-off) live in the ledger.  Every replica keeps a snapshot of keys and
revocations, refreshed every ``TRUST_REFRESH_SECONDS``, so a revocation
reaches every replica within that time without a database read per request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jose import ExpiredSignatureError, JWTError, jwt

from conveyor.ledger import ClientRecord, Ledger
from conveyor.ledger.records import Revocations
from conveyor.settings import Settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "jti", "iss", "aud", "sub")
TRUST_REFRESH_SECONDS = 1.0
VERIFIED_CACHE_SIZE = 10_000


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired, revoked or for someone else.

    ``reason`` (``invalid``, ``expired`` or ``revoked``) is what metrics count by."""

    def __init__(self, detail: str, reason: str = "invalid") -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proved by a verified token."""

    client_id: str
    tier: str
    scopes: frozenset[str]
    token_id: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class _TrustSnapshot:
    active_kid: str
    keys: dict[str, str]
    revocations: Revocations


class TokenCodec:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self._master = settings.require_jwt_secret().encode()
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl = settings.token_ttl_seconds
        self._ledger = ledger
        self._trust: _TrustSnapshot | None = None
        self._verified: dict[str, tuple[Principal, str, float]] = {}

    def _key(self, kid: str) -> str:
        return hmac.new(self._master, f"conveyor-jwt:{kid}".encode(), hashlib.sha256).hexdigest()

    def refresh(self) -> None:
        """Reload signing keys and revocations from the ledger (blocking: run off the event loop)."""
        self._ledger.ensure_signing_key()
        keys = self._ledger.signing_keys(retired_since=datetime.now(UTC) - timedelta(seconds=self._ttl))
        self._trust = _TrustSnapshot(
            active_kid=keys[0].kid,
            keys={key.kid: self._key(key.kid) for key in keys},
            revocations=self._ledger.revocations(),
        )

    @property
    def _snapshot(self) -> _TrustSnapshot:
        if self._trust is None:
            self.refresh()
        assert self._trust is not None
        return self._trust

    def issue(self, client: ClientRecord) -> IssuedToken:
        # iat keeps milliseconds (a NumericDate may be fractional) so that a
        # client cut-off separates tokens issued within the same second.
        now = time.time()
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": client.id,
            "iat": round(now, 3),
            "exp": int(now) + self._ttl,
            "jti": uuid.uuid4().hex,
            "tier": client.tier,
            "scopes": list(client.scopes),
        }
        kid = self._snapshot.active_kid
        token = jwt.encode(claims, self._key(kid), algorithm=ALGORITHM, headers={"kid": kid})
        return IssuedToken(token=token, expires_in=self._ttl, scopes=client.scopes)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`InvalidToken` otherwise.

        A token's signature and claims are checked once and the result kept
        (clients reuse a token for many requests); expiry, the signing key and
        revocations are checked on every call.
        """
        trust = self._snapshot
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify_signature_and_claims(token, trust)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = verified
        principal, kid, issued_at = verified
        if principal.expires_at.timestamp() <= time.time():
            raise InvalidToken("token has expired", reason="expired")
        if kid not in trust.keys:
            raise InvalidToken("token is invalid: unknown or retired signing key")
        cut_off = trust.revocations.clients_revoked_before.get(principal.client_id)
        if principal.token_id in trust.revocations.token_ids or (cut_off and issued_at < cut_off.timestamp()):
            raise InvalidToken("token has been revoked", reason="revoked")
        return principal

    def _verify_signature_and_claims(self, token: str, trust: _TrustSnapshot) -> tuple[Principal, str, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except JWTError as error:
            raise InvalidToken(f"token is invalid: {error}") from None
        key = trust.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("token is invalid: unknown or retired signing key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={f"require_{claim}": True for claim in REQUIRED_CLAIMS},
            )
        except ExpiredSignatureError:
            raise InvalidToken("token has expired", reason="expired") from None
        except JWTError as error:
            raise InvalidToken(f"token is invalid: {error}") from None
        tier, scopes = claims.get("tier"), claims.get("scopes")
        if not isinstance(tier, str) or not isinstance(scopes, list):
            raise InvalidToken("token is invalid: missing tier or scopes")
        principal = Principal(
            client_id=claims["sub"],
            tier=tier,
            scopes=frozenset(scopes),
            token_id=claims["jti"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
        return principal, kid, float(claims["iat"])
