"""Webhook signatures: what a receiver accepts and refuses."""

from __future__ import annotations

import pytest

from conveyor.webhook_signing import InvalidSignature, sign, verify, webhook_secret

SECRET = "s" * 40


def test_each_client_has_its_own_secret() -> None:
    assert webhook_secret(SECRET, "a") != webhook_secret(SECRET, "b") != webhook_secret("t" * 40, "b")


def test_an_old_or_tampered_signature_is_refused() -> None:
    body = b'{"event":"batch.finished"}'
    header = sign(SECRET, body, timestamp=1_000_000)
    verify(SECRET, header, body, now=1_000_100)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, header, body, now=1_000_000 + 301)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, header, body + b" ", now=1_000_100)
    with pytest.raises(InvalidSignature, match="malformed"):
        verify(SECRET, "v1=abc", body)
