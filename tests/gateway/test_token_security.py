"""Every way a token can be wrong is a 401; a missing scope is a 403.

Tokens are forged here with the documented key scheme (HMAC-SHA256 of the
master secret and the kid), independently of the gateway's own code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt
from starlette.testclient import TestClient

from conveyor.ledger import Ledger
from conveyor.settings import Settings

PROTECTED = "/api/v1/batches"


def derived_key(settings: Settings, kid: str) -> str:
    return hmac.new(settings.jwt_secret.encode(), f"conveyor-jwt:{kid}".encode(), hashlib.sha256).hexdigest()


def time_ago(seconds: int) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def active_kid(service_ledger: Ledger) -> str:
    return service_ledger.signing_keys(retired_since=time_ago(0))[0].kid


def claims(settings: Settings, subject: str = "cl_x", **changes) -> dict:
    now = int(time.time())
    values = {
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "sub": subject, "iat": now, "exp": now + 60,
        "jti": "j-1", "tier": "standard", "scopes": ["batches:read", "batches:write"],
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def forge(settings: Settings, service_ledger: Ledger, key: str | None = None, kid: str | None = None, **changes) -> str:
    kid = kid or active_kid(service_ledger)
    return jwt.encode(claims(settings, **changes), key or derived_key(settings, kid), algorithm="HS256", headers={"kid": kid})


def get(api: TestClient, token: str):
    return api.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_a_correctly_forged_token_is_accepted(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    """The control: without it every 401 below could have another cause."""
    assert get(api, forge(service_settings, service_ledger)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer not-a-jwt"}],
)
def test_missing_or_malformed_token_is_401(api: TestClient, headers: dict[str, str]) -> None:
    for response in (api.get(PROTECTED, headers=headers), api.post(PROTECTED, headers=headers)):
        assert response.status_code == 401
        assert response.json()["error"] in {"unauthorized", "invalid_token"}
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": -10}, "expired"),  # seconds from when the test runs (collection may be minutes earlier)
        ({"nbf": 600}, "invalid"),
        ({"aud": "someone-else"}, "invalid"),
        ({"iss": "someone-else"}, "invalid"),
        ({"jti": None}, "jti"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
        ({"tier": None}, "tier"),
    ],
)
def test_bad_claims_are_401(api: TestClient, service_settings: Settings, service_ledger: Ledger, changes: dict, reason: str) -> None:
    changes = {
        claim: int(time.time()) + value if claim in ("exp", "nbf") and value is not None else value
        for claim, value in changes.items()
    }
    response = get(api, forge(service_settings, service_ledger, **changes))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert reason in response.json()["detail"]


def test_wrong_key_is_401(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    assert get(api, forge(service_settings, service_ledger, key="another-key-that-is-long-enough-0123456789")).status_code == 401


def test_hs256_signed_with_a_public_key_is_401(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    public_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    # python-jose refuses to sign this way, so the attack is built by hand.
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': active_kid(service_ledger)})}.{b64(claims(service_settings))}"
    signature = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
    assert get(api, token).status_code == 401


def test_other_algorithms_are_401(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    rs256 = jwt.encode(claims(service_settings), pem.decode(), algorithm="RS256", headers={"kid": active_kid(service_ledger)})
    assert get(api, rs256).status_code == 401
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': active_kid(service_ledger)})}.{b64(claims(service_settings))}."
    assert get(api, unsigned).status_code == 401


def test_tampered_payload_is_401(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    header, _, signature = forge(service_settings, service_ledger).split(".")
    promoted = b64(claims(service_settings, tier="enterprise", scopes=["admin"]))
    assert get(api, f"{header}.{promoted}.{signature}").status_code == 401


def test_unknown_kid_is_401(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    response = get(api, forge(service_settings, service_ledger, kid="not-a-kid"))
    assert response.status_code == 401
    assert "signing key" in response.json()["detail"]


def test_missing_scope_is_403(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    read_only = forge(service_settings, service_ledger, scopes=["batches:read"])
    assert get(api, read_only).status_code == 200
    response = api.post(PROTECTED, headers={"Authorization": f"Bearer {read_only}"}, files={"files": ("a.txt", b"x")})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_revoked_token_is_401(api: TestClient, service_settings: Settings, service_ledger: Ledger) -> None:
    token = forge(service_settings, service_ledger, jti="to-revoke")
    assert get(api, token).status_code == 200
    service_ledger.revoke_token("to-revoke", "cl_x", expires_at=time_ago(-60))
    api.app.state.services.tokens.refresh()  # what every replica does each second
    response = get(api, token)
    assert (response.status_code, response.json()["detail"]) == (401, "token has been revoked")


def test_rotation_keeps_old_tokens_valid_until_they_expire(
    api: TestClient, service_settings: Settings, service_ledger: Ledger, make_client
) -> None:
    codec = api.app.state.services.tokens
    old_token = codec.issue(make_client().client).token
    service_ledger.rotate_signing_key()
    codec.refresh()
    new_token = codec.issue(make_client().client).token
    assert jwt.get_unverified_header(new_token)["kid"] != jwt.get_unverified_header(old_token)["kid"]
    assert get(api, old_token).status_code == 200
    assert get(api, new_token).status_code == 200
