"""Bearer-token authentication of API requests."""

from __future__ import annotations

from starlette.requests import Request

from conveyor.access_tokens import InvalidToken, Principal
from gateway.errors import ApiError
from gateway.metrics import AUTH_FAILURES
from gateway.services import services


def authenticate(request: Request, scope: str) -> Principal:
    """The verified caller of ``request``; 401 without a valid token, 403 without ``scope``.

    The rate limiter has usually verified the token already (it keys limits by
    client); its principal is reused.
    """
    principal = getattr(request.state, "principal", None)
    if principal is None:
        principal = _verify_bearer(request)
    if scope not in principal.scopes:
        AUTH_FAILURES.labels("insufficient_scope").inc()
        raise ApiError(403, "insufficient_scope", f"this token lacks the {scope!r} scope")
    return principal


def _verify_bearer(request: Request) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        AUTH_FAILURES.labels("missing_token").inc()
        raise ApiError(
            401, "unauthorized", "send an access token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="conveyor"'},
        )
    try:
        return services(request).tokens.verify(token.strip())
    except InvalidToken as error:
        AUTH_FAILURES.labels(f"{error.reason}_token").inc()
        raise ApiError(
            401, "invalid_token", str(error),
            headers={"WWW-Authenticate": 'Bearer realm="conveyor", error="invalid_token"'},
        ) from None
