"""What a client may ask of a batch besides its files, checked before anything is recorded.

``?pipeline=`` (query; known before the body is read, so backpressure is
judged on the right queue), ``callback_url`` and ``thresholds`` (text fields
of the multipart body).  Each bad value is a 400 naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from conveyor.pipelines import CSV_QUALITY_PIPELINE, DEFAULT_PIPELINE, PIPELINES
from conveyor.quality_thresholds import InvalidThresholds, parse_thresholds
from gateway.errors import ApiError

MAX_CALLBACK_URL_LENGTH = 2048


@dataclass(frozen=True)
class BatchOptions:
    pipeline: str
    callback_url: str | None
    pipeline_options: dict[str, Any] | None


def requested_pipeline(request: Request) -> str:
    pipeline = request.query_params.get("pipeline", DEFAULT_PIPELINE)
    if pipeline not in PIPELINES:
        raise ApiError(400, "unknown_pipeline", f"pipeline must be one of {', '.join(sorted(PIPELINES))}, not {pipeline!r}")
    return pipeline


def _callback_url(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    url = raw.strip()
    parts = urlsplit(url)
    if len(url) > MAX_CALLBACK_URL_LENGTH or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(
            400, "invalid_callback_url",
            f"callback_url must be an http:// or https:// URL with a host, at most {MAX_CALLBACK_URL_LENGTH} characters",
        )
    return url


def _thresholds(pipeline: str, raw: str | None) -> dict[str, Any] | None:
    if pipeline != CSV_QUALITY_PIPELINE:
        if raw is not None:
            raise ApiError(400, "invalid_thresholds", f"thresholds apply to the {CSV_QUALITY_PIPELINE} pipeline only")
        return None
    if raw is None:
        raise ApiError(400, "invalid_thresholds", f"the {CSV_QUALITY_PIPELINE} pipeline needs a thresholds field")
    try:
        return {"thresholds": parse_thresholds(json.loads(raw)).to_json()}
    except json.JSONDecodeError as error:
        raise ApiError(400, "invalid_thresholds", f"thresholds is not JSON: {error}") from None
    except InvalidThresholds as error:
        raise ApiError(400, "invalid_thresholds", str(error)) from None


def batch_options(pipeline: str, fields: dict[str, str]) -> BatchOptions:
    return BatchOptions(
        pipeline=pipeline,
        callback_url=_callback_url(fields.get("callback_url")),
        pipeline_options=_thresholds(pipeline, fields.get("thresholds")),
    )
