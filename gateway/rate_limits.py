"""Per-client, per-tier rate limits (slowapi over ``limits``).

Every route belongs to one route class and is wrapped with that class's
shared limit when the app is built, so endpoints of a class share one counter
per client.  Authenticated classes are keyed ``<tier>:<client id>`` from the
bearer token and limited by the tier's rate; a request without a valid token
is keyed by client IP and gets the unauthenticated rate.  The client IP is the
peer address, or the last untrusted hop of ``X-Forwarded-For`` when the peer
is a configured proxy.  Counters live in ``CONVEYOR_RATE_LIMIT_STORAGE``
(Redis when several replicas must share them).
"""

from __future__ import annotations

import enum
import inspect
import math
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network, ip_address

from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from starlette.requests import Request
from starlette.responses import Response

from conveyor.settings import Settings
from conveyor.tiers import Tiers
from conveyor.access_tokens import InvalidToken, TokenCodec
from gateway.errors import error_response
from gateway.metrics import RATE_LIMITED, UNAUTHENTICATED

UPLOAD_COST_BYTES = 10 * 1024 * 1024
_ANONYMOUS = "ip"


class RouteClass(enum.Enum):
    UPLOADS = "uploads"  # writes: uploads, cancel, retry
    READS = "reads"  # everything a client reads
    AUTH = "auth"  # token requests, before a client is known
    PROBES = "probes"  # health and readiness


def client_address(request: Request, trusted_proxies: tuple[IPv4Network | IPv6Network, ...]) -> str:
    """The caller's IP: ``X-Forwarded-For`` is believed only from trusted proxies,
    walking the chain back from our peer to the first address we do not trust."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies:
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed([*hops, peer]):
        try:
            address = ip_address(hop)
        except ValueError:
            return hop  # a malformed hop is nobody we trust: it is the client as far as we know
        if not any(address in network for network in trusted_proxies):
            return hop
    return hops[0] if hops else peer


def _with_signature(function: Callable) -> Callable:
    """slowapi inspects its callbacks' parameters on every request; a function
    carrying its ``__signature__`` answers that several times faster."""
    function.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
    return function


def upload_cost(request: Request) -> int:
    """1 unit per upload, plus 1 per full 10 MiB of declared body."""
    try:
        length = int(request.headers.get("content-length", "0"))
    except ValueError:
        length = 0
    return 1 + max(length, 0) // UPLOAD_COST_BYTES


class RateLimits:
    def __init__(self, settings: Settings, tiers: Tiers, tokens: TokenCodec) -> None:
        self._settings = settings
        self._tiers = tiers
        self._tokens = tokens
        self.limiter = Limiter(
            key_func=_with_signature(lambda request: self.client_key(request)),
            storage_uri=settings.rate_limit_storage,
            key_prefix=settings.rate_limit_prefix,
            headers_enabled=True,
            key_style="endpoint",
        )

    def client_key(self, request: Request) -> str:
        """``<tier>:<client id>`` for a verifiable bearer token, else ``ip:<address>``.

        The key and the verified principal are kept on the request: slowapi asks
        for the key more than once, and the endpoint needs the principal.
        """
        key = getattr(request.state, "rate_limit_key", None)
        if key is None:
            key = request.state.rate_limit_key = self._key(request)
        return key

    def _key(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                principal = self._tokens.verify(token.strip())
            except InvalidToken:
                pass
            else:
                request.state.principal = principal
                return f"{principal.tier}:{principal.client_id}"
        return f"{_ANONYMOUS}:{client_address(request, self._settings.trusted_proxies)}"

    def _rate(self, route_class: RouteClass) -> Callable[[str], str]:
        def rate_for(key: str) -> str:
            kind = key.split(":", 1)[0]
            if route_class is RouteClass.PROBES:
                return self._tiers.unauthenticated.probe_rate
            if kind == _ANONYMOUS or route_class is RouteClass.AUTH or kind not in self._tiers.names:
                return self._tiers.unauthenticated.auth_rate  # never unlimited, whatever the token says
            tier = self._tiers[kind]
            return tier.upload_rate if route_class is RouteClass.UPLOADS else tier.read_rate

        return _with_signature(rate_for)

    def limit(self, route_class: RouteClass, endpoint: Callable) -> Callable:
        """``endpoint`` wrapped with its class's shared limit."""
        cost = upload_cost if route_class is RouteClass.UPLOADS else 1
        return self.limiter.shared_limit(self._rate(route_class), scope=route_class.value, cost=cost)(endpoint)


def whole_second_reset(response: Response) -> Response:
    """slowapi writes X-RateLimit-Reset as a float; clients expect whole epoch seconds."""
    reset = response.headers.get("x-ratelimit-reset")
    if reset is not None:
        response.headers["x-ratelimit-reset"] = str(math.ceil(float(reset)))
    return response


async def handle_rate_limit_exceeded(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimitExceeded)
    principal = getattr(request.state, "principal", None)
    RATE_LIMITED.labels(principal.tier if principal else UNAUTHENTICATED).inc()
    response = error_response(429, "rate_limited", f"rate limit exceeded: {exc.detail}; see Retry-After")
    return whole_second_reset(request.app.state.limiter._inject_headers(response, request.state.view_rate_limit))
