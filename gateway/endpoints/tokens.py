"""OAuth2 client-credentials token endpoint (RFC 6749 section 4.4)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.credentials import authenticate_client
from gateway.errors import ApiError
from gateway.metrics import AUTH_FAILURES
from gateway.services import services

MAX_FORM_BYTES = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "send the token request as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(413, "payload_too_large", f"token requests are at most {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, separator, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "invalid_request", "malformed Basic authorization header") from None
    if not separator:
        raise ApiError(400, "invalid_request", "malformed Basic authorization header")
    return unquote(client_id), unquote(secret)


async def issue_token(request: Request) -> JSONResponse:
    form = await _read_form(request)
    if form.get("grant_type") != "client_credentials":
        raise ApiError(400, "unsupported_grant_type", "grant_type must be client_credentials")
    credentials = _basic_credentials(request) or (form.get("client_id", ""), form.get("client_secret", ""))
    client_id, secret = credentials
    if not client_id or not secret:
        raise ApiError(400, "invalid_request", "client_id and client_secret are required")
    gateway = services(request)
    client = await run_in_threadpool(authenticate_client, gateway.ledger, client_id, secret)
    if client is None:
        AUTH_FAILURES.labels("invalid_client").inc()
        raise ApiError(401, "invalid_client", "unknown client or wrong secret", headers=_NO_STORE)
    issued = gateway.tokens.issue(client)
    return JSONResponse(
        {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": " ".join(issued.scopes),
        },
        headers=_NO_STORE,
    )
