"""Operator routes, for tokens with the ``admin`` scope only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.ledger import ClientRecord
from conveyor.ledger.access import UnknownClient
from conveyor.pipelines import queue_names
from gateway.authentication import authenticate
from gateway.errors import ApiError
from gateway.json_body import read_json_object
from gateway.publisher import BrokerUnavailable, JobPublisher
from gateway.services import services

ADMIN_SCOPE = "admin"


def client_view(client: ClientRecord) -> dict[str, object]:
    return {
        "id": client.id,
        "name": client.name,
        "tier": client.tier,
        "scopes": list(client.scopes),
        "created_at": client.created_at.isoformat(),
        "disabled_at": client.disabled_at.isoformat() if client.disabled_at else None,
    }


async def list_clients(request: Request) -> JSONResponse:
    authenticate(request, ADMIN_SCOPE)
    clients = await run_in_threadpool(services(request).ledger.list_clients)
    return JSONResponse({"clients": [client_view(client) for client in clients]})


async def revoke_tokens(request: Request) -> JSONResponse:
    """``{"jti": "..."}`` revokes one token; ``{"client_id": "..."}`` every token issued to a client so far."""
    authenticate(request, ADMIN_SCOPE)
    body = await read_json_object(request)
    gateway = services(request)
    jti, client_id = body.get("jti"), body.get("client_id")
    unknown = sorted(set(body) - {"jti", "client_id"})
    if unknown:
        raise ApiError(422, "invalid_body", f"unknown fields: {', '.join(unknown)}")
    if isinstance(jti, str) and jti and client_id is None:
        # A token lives at most token_ttl_seconds, so its deny-list entry need not live longer.
        expires_at = datetime.now(UTC) + timedelta(seconds=gateway.settings.token_ttl_seconds)
        await run_in_threadpool(gateway.ledger.revoke_token, jti, "", expires_at)
        revoked: dict[str, str] = {"jti": jti}
    elif isinstance(client_id, str) and client_id and jti is None:
        try:
            await run_in_threadpool(gateway.ledger.update_client, client_id)
        except UnknownClient:
            raise ApiError(404, "not_found", f"no client {client_id}") from None
        revoked = {"client_id": client_id}
    else:
        raise ApiError(422, "invalid_body", 'send {"jti": "<token id>"} or {"client_id": "<client id>"}')
    await run_in_threadpool(gateway.tokens.refresh)
    return JSONResponse({"revoked": revoked})


async def rotate_signing_key(request: Request) -> JSONResponse:
    authenticate(request, ADMIN_SCOPE)
    gateway = services(request)
    key = await run_in_threadpool(gateway.ledger.rotate_signing_key)
    await run_in_threadpool(gateway.tokens.refresh)
    previous_valid_until = key.created_at + timedelta(seconds=gateway.settings.token_ttl_seconds)
    return JSONResponse({"kid": key.kid, "previous_keys_verify_until": previous_valid_until.isoformat()})


async def queue_states(publisher: JobPublisher) -> list[dict[str, object]]:
    """Ready messages and consumers per job queue, its delay queue (retries waiting) and its dead-letter queue."""
    states: list[dict[str, object]] = []
    for queue in queue_names():
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            ready, consumers = await publisher.queue_state(name)
            states.append({"queue": name, "ready": ready, "consumers": consumers})
    return states


async def queue_depths(request: Request) -> JSONResponse:
    authenticate(request, ADMIN_SCOPE)
    try:
        return JSONResponse({"queues": await queue_states(services(request).publisher)})
    except BrokerUnavailable as error:
        raise ApiError(503, "broker_unavailable", str(error), headers={"Retry-After": "10"}) from None
