"""Cursor paging: opaque cursors and bounded page sizes from query parameters."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request

from gateway.errors import ApiError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(request: Request) -> list[Any] | None:
    """The position after which the next page starts, or ``None`` for the first page."""
    raw = request.query_params.get("cursor")
    if raw is None:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        position = None
    if not isinstance(position, list):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned; start again without it")
    return position


def page_size(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_PAGE_SIZE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ApiError(400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(raw)
