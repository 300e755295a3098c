"""Signatures of the webhooks Conveyor sends, and how a receiver checks them.

Each client has its own webhook secret, derived from ``CONVEYOR_JWT_SECRET``
and the client id (HMAC-SHA256), so nothing secret is stored and a client
reads its secret from ``GET /api/v1/webhook-secret``.  A webhook carries::

    Conveyor-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is signed with the body, so a receiver that also checks it is
recent refuses replays of an old delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Conveyor-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The webhook was not signed with this secret, or too long ago."""


def webhook_secret(master_secret: str, client_id: str) -> str:
    return hmac.new(master_secret.encode(), f"conveyor-webhook:{client_id}".encode(), hashlib.sha256).hexdigest()


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Conveyor-Signature`` header value for ``body``."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_digest(secret, moment, body)}"


def verify(
    secret: str, header: str, body: bytes, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> None:
    """Raise :class:`InvalidSignature` unless ``header`` signs ``body`` with ``secret`` recently enough."""
    try:
        fields = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(fields["t"])
        signature = fields["v1"]
    except (KeyError, ValueError):
        raise InvalidSignature(f"malformed {SIGNATURE_HEADER} header") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        raise InvalidSignature("signature timestamp outside the tolerance")
    if not hmac.compare_digest(signature, _digest(secret, timestamp, body)):
        raise InvalidSignature("signature does not match")
