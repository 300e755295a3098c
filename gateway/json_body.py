"""Small JSON request bodies (admin routes, schedules, watched directories).

One rule for all of them: a body that is not JSON is 400 ``malformed_json``;
well-formed JSON that does not fit the route (not an object, an unknown or
invalid field) is 422, with the field named in the detail.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from gateway.errors import ApiError

MAX_JSON_BYTES = 16 * 1024


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object (an empty body reads as ``{}``)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "payload_too_large", f"request bodies here are at most {MAX_JSON_BYTES} bytes")
    try:
        document = json.loads(body or b"{}")
    except ValueError as error:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    return document
