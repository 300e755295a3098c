"""Watched directories (admin only): what the directory watcher turns into batches.

``POST /api/v1/admin/watched-directories`` with ``{"path", "client_id",
"recursive", "extensions", "settle_seconds"}`` (only the first two required)
starts watching a directory; ``DELETE .../{directory_id}`` stops it.  The
watcher (``python -m watcher``) picks changes up within seconds.  The path is
checked on the gateway's host, so the gateway and the watcher should see the
same filesystem.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conveyor.ledger.access import UnknownClient
from conveyor.ledger.watching import (
    MAX_SETTLE_SECONDS,
    DuplicateWatchedDirectory,
    InvalidWatchedDirectory,
    WatchedDirectory,
    WatchLedger,
    normalise_extensions,
    normalise_path,
)
from gateway.authentication import authenticate
from gateway.endpoints.admin import ADMIN_SCOPE
from gateway.endpoints.batches import WRITE_SCOPE
from gateway.errors import ApiError
from gateway.json_body import read_json_object
from gateway.services import services

_FIELDS = {"path", "client_id", "recursive", "extensions", "settle_seconds"}


def directory_path(directory_id: str) -> str:
    return f"/api/v1/admin/watched-directories/{directory_id}"


def directory_view(directory: WatchedDirectory) -> dict[str, Any]:
    return {
        "id": directory.id,
        "path": directory.path,
        "client_id": directory.client_id,
        "recursive": directory.recursive,
        "extensions": list(directory.extensions),
        "settle_seconds": directory.settle_seconds,
        "created_at": directory.created_at.isoformat(),
        "links": {"self": directory_path(directory.id)},
    }


def _watching(request: Request) -> WatchLedger:
    return WatchLedger(services(request).ledger.engine)


def _bad(error: str, detail: str) -> ApiError:
    return ApiError(422, error, detail)


def _string(document: dict[str, Any], field: str) -> str:
    value = document.get(field)
    if not isinstance(value, str) or not value:
        raise _bad("invalid_body", f"{field} must be a non-empty string")
    return value


def _options(document: dict[str, Any], default_extensions: tuple[str, ...], default_settle: int) -> tuple[bool, tuple[str, ...], int]:
    recursive = document.get("recursive", False)
    if not isinstance(recursive, bool):
        raise _bad("invalid_body", "recursive must be true or false")
    extensions = document.get("extensions", list(default_extensions))
    if not isinstance(extensions, list) or not all(isinstance(extension, str) for extension in extensions):
        raise _bad("invalid_extensions", "extensions must be a list of strings like \".txt\"")
    try:
        extensions = normalise_extensions(extensions)
    except InvalidWatchedDirectory as error:
        raise _bad("invalid_extensions", str(error)) from None
    settle = document.get("settle_seconds", default_settle)
    if isinstance(settle, float) and settle.is_integer():
        settle = int(settle)
    if isinstance(settle, bool) or not isinstance(settle, int) or not 1 <= settle <= MAX_SETTLE_SECONDS:
        raise _bad("invalid_body", f"settle_seconds must be an integer from 1 to {MAX_SETTLE_SECONDS}")
    return recursive, extensions, settle


async def create_watched_directory(request: Request) -> JSONResponse:
    authenticate(request, ADMIN_SCOPE)
    document = await read_json_object(request)
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise _bad("invalid_body", f"unknown fields: {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    gateway = services(request)
    try:
        path = normalise_path(_string(document, "path"))
    except InvalidWatchedDirectory as error:
        raise _bad("invalid_path", str(error)) from None
    client_id = _string(document, "client_id")
    recursive, extensions, settle = _options(
        document, gateway.settings.watch_extensions, gateway.settings.watch_settle_seconds
    )
    if not await run_in_threadpool(os.path.isdir, path):
        raise _bad("not_a_directory", f"{path} is not an existing directory on the gateway's host")
    client = await gateway.read_ledger(gateway.ledger.get_client, client_id)
    if client is None:
        raise _bad("unknown_client", f"no client {client_id}")
    if client.disabled_at is not None or WRITE_SCOPE not in client.scopes:
        raise _bad("unknown_client", f"client {client_id} is disabled or lacks the {WRITE_SCOPE!r} scope")
    try:
        directory = await run_in_threadpool(
            _watching(request).add_directory, path, client_id, recursive, extensions, settle
        )
    except DuplicateWatchedDirectory as error:
        raise ApiError(409, "already_watched", str(error)) from None
    except UnknownClient:
        raise _bad("unknown_client", f"no client {client_id}") from None
    except InvalidWatchedDirectory as error:
        raise _bad("invalid_body", str(error)) from None
    return JSONResponse(directory_view(directory), status_code=201, headers={"Location": directory_path(directory.id)})


async def list_watched_directories(request: Request) -> JSONResponse:
    authenticate(request, ADMIN_SCOPE)
    directories = await services(request).read_ledger(_watching(request).list_directories)
    return JSONResponse({"watched_directories": [directory_view(directory) for directory in directories]})


async def delete_watched_directory(request: Request) -> Response:
    """Stop watching; what the directory submitted stays remembered (adding it again submits only new content)."""
    authenticate(request, ADMIN_SCOPE)
    directory_id = request.path_params["directory_id"]
    if not await run_in_threadpool(_watching(request).remove_directory, directory_id):
        raise ApiError(404, "not_found", f"no watched directory {directory_id}")
    return Response(status_code=204)
