"""Bearer-token authentication of API requests."""

from __future__ import annotations

from starlette.requests import Request

from gateway.access_tokens import InvalidToken, Principal
from gateway.errors import ApiError
from gateway.services import services


def authenticate(request: Request, scope: str) -> Principal:
    """The verified caller of ``request``; 401 without a valid token, 403 without ``scope``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "unauthorized", "send an access token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="conveyor"'},
        )
    try:
        principal = services(request).tokens.verify(token.strip())
    except InvalidToken as error:
        raise ApiError(
            401, "invalid_token", str(error),
            headers={"WWW-Authenticate": 'Bearer realm="conveyor", error="invalid_token"'},
        ) from None
    if scope not in principal.scopes:
        raise ApiError(403, "insufficient_scope", f"this token lacks the {scope!r} scope")
    return principal
