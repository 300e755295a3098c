"""The OpenAPI 3.0 description of the gateway, served at ``/api/v1/openapi.json``.

Written out by hand so that every error a route can answer is listed with its
status; a test holds it to the route table and schemathesis holds the running
gateway to it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from conveyor.ledger import BatchStatus, JobState
from conveyor.ledger.schema import WebhookState
from conveyor.pipelines import DEFAULT_PIPELINE, PIPELINES

_ERROR_MEANINGS = {
    400: "Malformed request: bad parameter, cursor, body or file",
    401: "Missing, invalid, expired or revoked access token",
    403: "The token lacks the scope this route needs",
    404: "No such resource for this client",
    409: "Conflicts with the resource's state or an earlier request",
    413: "Body, file or batch larger than the tier allows",
    415: "Unsupported content type or file type",
    422: "Well-formed body with invalid fields",
    429: "Rate limit or pending-job quota exceeded (see Retry-After)",
    503: "Broker unavailable or job queue full (see Retry-After)",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(
    summary: str,
    ok_status: int,
    ok: dict[str, Any],
    errors: list[int],
    authenticated: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    responses = {str(ok_status): ok}
    for status in sorted({*errors, 429, *([401] if authenticated else [])}):
        responses[str(status)] = _json(_ref("Error"), _ERROR_MEANINGS[status])
    operation: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if not authenticated:
        operation["security"] = []
    return operation


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_PAGE_PARAMETERS = [
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
]
_TIMESTAMP = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    },
    "Batch": {
        "type": "object",
        "required": ["id", "status", "counts", "progress_percent", "created_at", "links"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": [status.value for status in BatchStatus]},
            "status_reason": _nullable({"type": "string"}),
            "counts": {
                "type": "object",
                "required": ["total", "succeeded", "failed", "cancelled", "pending"],
                "properties": {name: {"type": "integer", "minimum": 0} for name in ("total", "succeeded", "failed", "cancelled", "pending")},
            },
            "progress_percent": {"type": "number", "minimum": 0, "maximum": 100},
            "created_at": _TIMESTAMP,
            "started_at": _nullable(_TIMESTAMP),
            "finished_at": _nullable(_TIMESTAMP),
            "cancel_requested_at": _nullable(_TIMESTAMP),
            "callback_url": _nullable({"type": "string"}),
            "webhook_state": _nullable({"type": "string", "enum": [state.value for state in WebhookState]}),
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "batch_id", "position", "filename", "size_bytes", "sha256", "state", "attempts", "links"],
        "properties": {
            "id": {"type": "string"},
            "batch_id": {"type": "string"},
            "position": {"type": "integer", "minimum": 0},
            "filename": {"type": "string"},
            "size_bytes": {"type": "integer", "minimum": 0},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "pipeline": {"type": "string"},
            "state": {"type": "string", "enum": [state.value for state in JobState]},
            "attempts": {"type": "integer", "minimum": 0},
            "error": _nullable({"type": "string"}),
            "result": _nullable({"type": "object"}),
            "created_at": _TIMESTAMP,
            "started_at": _nullable(_TIMESTAMP),
            "finished_at": _nullable(_TIMESTAMP),
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "BatchPage": {
        "type": "object",
        "required": ["batches", "next_cursor"],
        "properties": {"batches": {"type": "array", "items": _ref("Batch")}, "next_cursor": _nullable({"type": "string"})},
    },
    "Results": {
        "type": "object",
        "required": ["batch", "jobs", "next_cursor"],
        "properties": {
            "batch": _ref("Batch"),
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_cursor": _nullable({"type": "string"}),
        },
    },
    "Report": {
        "type": "object",
        "required": ["summary", "jobs"],
        "properties": {
            "summary": {"type": "object"},
            "jobs": {"type": "array", "items": {"type": "object"}},
            "quality": {"type": "object", "description": "csv_quality batches: rows and statuses over every table"},
        },
    },
    "Retry": {
        "type": "object",
        "required": ["batch", "retried_jobs"],
        "properties": {"batch": _ref("Batch"), "retried_jobs": {"type": "array", "items": {"type": "string"}}},
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
            "scope": {"type": "string"},
        },
    },
    "Client": {
        "type": "object",
        "required": ["id", "name", "tier", "scopes", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "tier": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "created_at": _TIMESTAMP,
            "disabled_at": _nullable(_TIMESTAMP),
        },
    },
}

_BATCH = _json(_ref("Batch"), "The batch")
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}},
                    "callback_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "POSTed a signed summary when the batch ends (see README, Webhooks)",
                    },
                    "thresholds": {
                        "type": "string",
                        "description": "JSON per-column thresholds; required by the csv_quality pipeline",
                    },
                },
            }
        }
    },
}
_PIPELINE = {
    "name": "pipeline",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": sorted(PIPELINES), "default": DEFAULT_PIPELINE},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}

PATHS: dict[str, Any] = {
    "/api/v1/health": {"get": _operation("Liveness", 200, _json({"type": "object"}, "Up"), [], authenticated=False)},
    "/api/v1/ready": {
        "get": _operation("Readiness of ledger and broker", 200, _json({"type": "object"}, "Ready"), [503], authenticated=False)
    },
    "/api/v1/openapi.json": {
        "get": _operation("This description", 200, _json({"type": "object"}, "OpenAPI document"), [], authenticated=False)
    },
    "/api/v1/auth/token": {
        "post": _operation(
            "OAuth2 client-credentials token",
            200,
            _json(_ref("Token"), "An access token"),
            [400, 401, 413, 415],
            authenticated=False,
            requestBody={
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["grant_type", "client_id", "client_secret"],
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "client_id": {"type": "string", "minLength": 1},
                                "client_secret": {"type": "string", "minLength": 1},
                            },
                        }
                    }
                },
            },
        )
    },
    "/api/v1/batches": {
        "post": _operation(
            "Upload documents as a new batch",
            202,
            _BATCH,
            [400, 403, 409, 413, 415, 503],
            parameters=[_IDEMPOTENCY_KEY, _PIPELINE],
            requestBody=_UPLOAD_BODY,
        ),
        "get": _operation(
            "Your batches, newest first",
            200,
            _json(_ref("BatchPage"), "A page of batches"),
            [400, 403],
            parameters=[
                {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": [s.value for s in BatchStatus]}},
                *_PAGE_PARAMETERS,
            ],
        ),
    },
    "/api/v1/batches/{batch_id}": {
        "parameters": [_path_parameter("batch_id")],
        "get": _operation("A batch", 200, _BATCH, [403, 404]),
        "delete": _operation("Cancel a batch", 202, _BATCH, [403, 404, 409]),
    },
    "/api/v1/batches/{batch_id}/retry": {
        "parameters": [_path_parameter("batch_id")],
        "post": _operation("Queue the failed jobs again", 202, _json(_ref("Retry"), "Jobs queued again"), [403, 404, 409, 503]),
    },
    "/api/v1/batches/{batch_id}/results": {
        "parameters": [_path_parameter("batch_id")],
        "get": _operation("The batch's jobs, paged", 200, _json(_ref("Results"), "A page of jobs"), [400, 403, 404], parameters=_PAGE_PARAMETERS),
    },
    "/api/v1/batches/{batch_id}/report": {
        "parameters": [_path_parameter("batch_id")],
        "get": _operation(
            "Summary and per-job rows",
            200,
            {
                "description": "The report",
                "content": {
                    "application/json": {"schema": _ref("Report")},
                    "text/csv": {"schema": {"type": "string"}},
                    "text/html": {"schema": {"type": "string"}},
                },
            },
            [400, 403, 404],
            parameters=[{"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "csv", "html"]}}],
        ),
    },
    "/api/v1/jobs/{job_id}": {
        "parameters": [_path_parameter("job_id")],
        "get": _operation("A job", 200, _json(_ref("Job"), "The job"), [403, 404]),
    },
    "/api/v1/webhook-secret": {
        "get": _operation(
            "Your webhook signing secret",
            200,
            _json(
                {
                    "type": "object",
                    "required": ["secret", "signature_header", "algorithm"],
                    "properties": {
                        "secret": {"type": "string"},
                        "signature_header": {"type": "string"},
                        "algorithm": {"type": "string"},
                    },
                },
                "The secret",
            ),
            [403],
        ),
    },
    "/api/v1/admin/clients": {
        "get": _operation(
            "All clients (admin)",
            200,
            _json({"type": "object", "required": ["clients"], "properties": {"clients": {"type": "array", "items": _ref("Client")}}}, "Clients"),
            [403],
        )
    },
    "/api/v1/admin/tokens/revoke": {
        "post": _operation(
            "Revoke a token or all of a client's tokens (admin)",
            200,
            _json({"type": "object", "required": ["revoked"]}, "Revoked"),
            [400, 403, 404, 413, 422],
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"type": "object", "required": ["jti"], "properties": {"jti": {"type": "string", "minLength": 1}}, "additionalProperties": False},
                                {"type": "object", "required": ["client_id"], "properties": {"client_id": {"type": "string", "minLength": 1}}, "additionalProperties": False},
                            ]
                        }
                    }
                },
            },
        )
    },
    "/api/v1/admin/signing-keys/rotate": {
        "post": _operation(
            "Start signing tokens with a new key (admin)",
            200,
            _json({"type": "object", "required": ["kid", "previous_keys_verify_until"]}, "The new key"),
            [403],
        )
    },
    "/api/v1/admin/queues": {
        "get": _operation(
            "Ready messages and consumers per queue (admin)",
            200,
            _json({"type": "object", "required": ["queues"]}, "Queue depths"),
            [403, 503],
        )
    },
    "/api/v1/limits": {
        "get": _operation(
            "The caller's tier and its limits (files per batch, file size, rates, pending jobs)",
            200,
            _json(
                {
                    "type": "object",
                    "required": ["tier", "priority", "max_files_per_batch", "max_file_bytes", "max_pending_jobs"],
                },
                "The tier's limits",
            ),
            [403],
        )
    },
    "/api/v1/admin/dashboard": {
        "get": _operation(
            "Every figure of the operators' dashboard: batches of all clients, queues, workers, tiers, failures, last hour (admin)",
            200,
            _json(
                {"type": "object", "required": ["batches", "queues", "workers", "tiers", "failures", "last_hour"]},
                "The dashboard's figures",
            ),
            [400, 403],
            parameters=[{"name": "status", "in": "query", "required": False, "schema": {"type": "string"}}],
        )
    },
    "/api/v1/admin/batches/{batch_id}": {
        "parameters": [_path_parameter("batch_id")],
        "get": _operation(
            "Any client's batch and its jobs (admin)",
            200,
            _json({"type": "object", "required": ["batch", "jobs"]}, "The batch and its first 500 jobs"),
            [403, 404],
        ),
    },
    "/dashboard": {
        "get": _operation(
            "The operators' web dashboard (sign in with an admin client credential)",
            200,
            {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
            [],
            authenticated=False,
        )
    },
    "/dashboard/{asset}": {
        "parameters": [_path_parameter("asset")],
        "get": _operation(
            "The dashboard's script and style sheet (app.js, style.css)",
            200,
            {
                "description": "The asset",
                "content": {"text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}},
            },
            [404],
            authenticated=False,
        ),
    },
}

# Schedules and live workers (see gateway/endpoints/schedules.py, workers.py).
SCHEMAS["Schedule"] = {
    "type": "object",
    "required": ["id", "name", "cron", "source_kind", "source", "enabled", "created_at", "next_run_at", "links"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "cron": {"type": "string"},
        "source_kind": {"type": "string", "enum": ["batch", "directory"]},
        "source": {"type": "string"},
        "enabled": {"type": "boolean"},
        "created_at": _TIMESTAMP,
        "next_run_at": _TIMESTAMP,
        "last_run_at": _nullable(_TIMESTAMP),
        "last_batch_id": _nullable({"type": "string"}),
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
SCHEMAS["Worker"] = {
    "type": "object",
    "required": ["worker_id", "hostname", "pid", "queues", "started_at", "last_seen_at", "jobs_in_progress"],
    "properties": {
        "worker_id": {"type": "string"},
        "hostname": {"type": "string"},
        "pid": {"type": "integer"},
        "queues": {"type": "array", "items": {"type": "string"}},
        "started_at": _TIMESTAMP,
        "last_seen_at": _TIMESTAMP,
        "jobs_in_progress": {"type": "integer", "minimum": 0},
    },
}
PATHS.update(
    {
        "/api/v1/schedules": {
            "post": _operation(
                "Schedule re-runs of a batch (or, admin only, a directory)",
                201,
                _json(_ref("Schedule"), "The schedule"),
                [400, 403, 404, 409, 413, 422],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name", "cron", "source"],
                                "properties": {
                                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                                    "cron": {
                                        "type": "string",
                                        "description": "5 cron fields in UTC, or @hourly, @daily, @weekly, @monthly",
                                    },
                                    "source_kind": {"type": "string", "enum": ["batch", "directory"], "default": "batch"},
                                    "source": {"type": "string", "description": "a batch id of yours, or a directory path (admin)"},
                                },
                                "additionalProperties": False,
                            }
                        }
                    },
                },
            ),
            "get": _operation(
                "Your schedules",
                200,
                _json(
                    {"type": "object", "required": ["schedules"], "properties": {"schedules": {"type": "array", "items": _ref("Schedule")}}},
                    "Schedules",
                ),
                [403],
            ),
        },
        "/api/v1/schedules/{schedule_id}": {
            "parameters": [_path_parameter("schedule_id")],
            "delete": _operation("Delete a schedule", 204, {"description": "Deleted"}, [403, 404]),
        },
        "/api/v1/admin/workers": {
            "get": _operation(
                "Live worker processes, from their heartbeats (admin)",
                200,
                _json(
                    {
                        "type": "object",
                        "required": ["workers", "jobs_in_progress", "live_within_seconds"],
                        "properties": {
                            "workers": {"type": "array", "items": _ref("Worker")},
                            "jobs_in_progress": {"type": "integer", "minimum": 0},
                            "live_within_seconds": {"type": "number"},
                        },
                    },
                    "Workers",
                ),
                [403],
            )
        },
    }
)

# Watched directories (see gateway/endpoints/watching.py and watcher/).
SCHEMAS["WatchedDirectory"] = {
    "type": "object",
    "required": ["id", "path", "client_id", "recursive", "extensions", "settle_seconds", "created_at", "links"],
    "properties": {
        "id": {"type": "string"},
        "path": {"type": "string"},
        "client_id": {"type": "string"},
        "recursive": {"type": "boolean"},
        "extensions": {"type": "array", "items": {"type": "string"}},
        "settle_seconds": {"type": "integer", "minimum": 1},
        "created_at": _TIMESTAMP,
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
PATHS.update(
    {
        "/api/v1/admin/watched-directories": {
            "get": _operation(
                "Directories the watcher submits from (admin)",
                200,
                _json(
                    {
                        "type": "object",
                        "required": ["watched_directories"],
                        "properties": {"watched_directories": {"type": "array", "items": _ref("WatchedDirectory")}},
                    },
                    "Watched directories",
                ),
                [403],
            ),
            "post": _operation(
                "Watch a directory: its settled files become batches of a client (admin)",
                201,
                _json(_ref("WatchedDirectory"), "The watched directory"),
                [400, 403, 409, 413, 422],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["path", "client_id"],
                                "properties": {
                                    "path": {
                                        "type": "string",
                                        "minLength": 1,
                                        "maxLength": 1000,
                                        "description": "an absolute path of an existing directory",
                                    },
                                    "client_id": {"type": "string", "minLength": 1},
                                    "recursive": {"type": "boolean", "default": False},
                                    "extensions": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": {"type": "string", "pattern": "^\\.[A-Za-z0-9][A-Za-z0-9_+-]*(\\.[A-Za-z0-9][A-Za-z0-9_+-]*)*$"},
                                        "description": "default: CONVEYOR_WATCH_EXTENSIONS; matched case-insensitively",
                                    },
                                    "settle_seconds": {
                                        "type": "integer",
                                        "minimum": 1,
                                        "maximum": 86400,
                                        "description": "default: CONVEYOR_WATCH_SETTLE_SECONDS",
                                    },
                                },
                                "additionalProperties": False,
                            }
                        }
                    },
                },
            ),
        },
        "/api/v1/admin/watched-directories/{directory_id}": {
            "parameters": [_path_parameter("directory_id")],
            "delete": _operation("Stop watching a directory (admin)", 204, {"description": "Removed"}, [403, 404]),
        },
    }
)

SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Conveyor",
        "version": "1",
        "description": "Batch document processing. Every error is JSON: {\"error\": code, \"detail\": text}.",
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    },
    "security": [{"bearer": []}],
    "paths": PATHS,
}


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(SPEC)
