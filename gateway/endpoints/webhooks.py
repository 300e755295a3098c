"""The caller's webhook secret, to check the signature of the webhooks its batches send."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.webhook_signing import SIGNATURE_HEADER, webhook_secret
from gateway.authentication import authenticate
from gateway.endpoints.batches import READ_SCOPE
from gateway.services import services


async def get_webhook_secret(request: Request) -> JSONResponse:
    principal = authenticate(request, READ_SCOPE)
    secret = webhook_secret(services(request).settings.require_jwt_secret(), principal.client_id)
    return JSONResponse(
        {"secret": secret, "signature_header": SIGNATURE_HEADER, "algorithm": "HMAC-SHA256 over '<t>.' + body"},
        headers={"Cache-Control": "no-store"},
    )
