"""Submitting files as a batch through the gateway's HTTP API, for a client.

The watcher and the scheduler submit on behalf of clients.  They go through
``POST /api/v1/batches`` like any other caller, so every check the API makes
(tier caps, rate limits, the pending-job quota, backpressure, file types)
applies to them too.  They hold no client secret: they share the gateway's
``CONVEYOR_JWT_SECRET`` and mint the client's token with
:class:`~conveyor.access_tokens.TokenCodec` (cached until shortly before it
expires).

Every submission carries an ``Idempotency-Key`` chosen by the caller, so a
retry after a timeout, a crash or a second submitter returns the batch of the
first attempt instead of creating another.  That is also what makes the
retries here safe: 429 and 503 are waited out (``Retry-After``), as are
network errors and other 5xx, a bounded number of times.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from conveyor.access_tokens import TokenCodec
from conveyor.ledger import Ledger
from conveyor.settings import Settings

logger = logging.getLogger(__name__)

BATCHES_PATH = "/api/v1/batches"
MAX_ATTEMPTS = 6
MAX_WAIT_SECONDS = 60.0
FIRST_BACKOFF_SECONDS = 1.0
TOKEN_RENEW_MARGIN = 0.2  # renew a cached token when less than this share of its lifetime is left
_RETRIED_STATUSES = {429, 500, 502, 503, 504}


class SubmissionError(Exception):
    """The files could not be submitted."""


class SubmissionRefused(SubmissionError):
    """The gateway refused the submission (a 4xx other than 429); sending it again would not help."""

    def __init__(self, status_code: int, error: str, detail: str) -> None:
        super().__init__(f"{status_code} {error}: {detail}")
        self.status_code = status_code
        self.error = error
        self.detail = detail


class IdempotencyConflict(SubmissionRefused):
    """The idempotency key was used already, for other files (names or contents)."""


class SubmissionUnavailable(SubmissionError):
    """The gateway stayed unreachable, busy or failing through every attempt; try again later."""


@dataclass
class _CachedToken:
    token: str
    renew_at: float  # time.monotonic()


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), else ``default``."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("error", "error")), str(body.get("detail", ""))
    except (ValueError, AttributeError):
        return "error", response.text[:500]


class SubmissionClient:
    """``submit(client_id, files, idempotency_key)`` posts one batch and returns its id.

    ``sleep`` waits between attempts (inject one that raises to stop waiting
    when the caller shuts down); ``transport`` is for tests.
    """

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
        sleep: Callable[[float], object] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = httpx.Timeout(60.0, connect=10.0),
    ) -> None:
        self._url = f"{settings.gateway_url}{BATCHES_PATH}"
        self._ledger = ledger
        self._settings = settings
        self._codec: TokenCodec | None = None  # built on first use: it needs CONVEYOR_JWT_SECRET
        self._ttl = settings.token_ttl_seconds
        self._tokens: dict[str, _CachedToken] = {}
        self._max_attempts = max_attempts
        self._max_wait = max_wait_seconds
        self._sleep = sleep
        self._http = httpx.Client(transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SubmissionClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(self, client_id: str, files: Sequence[Path], idempotency_key: str, pipeline: str | None = None) -> str:
        """Submit ``files`` (streamed from disk, named by their last path segment) as one batch of
        ``client_id``; the batch id.  The same key and files return the same batch, however often.

        Raises :class:`SubmissionRefused` (:class:`IdempotencyConflict` for a key used
        with other files) or :class:`SubmissionUnavailable`; :class:`OSError` if a file
        cannot be read.
        """
        if not files:
            raise ValueError("a batch needs at least one file")
        params = {"pipeline": pipeline} if pipeline else None
        backoff = FIRST_BACKOFF_SECONDS
        renewed_after_401 = False
        last_problem = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            headers = {"Authorization": f"Bearer {self._token(client_id)}", "Idempotency-Key": idempotency_key}
            wait = backoff
            try:
                response = self._post(files, headers, params)
            except httpx.TransportError as error:
                last_problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 202:
                    return str(response.json()["id"])
                error_code, detail = _error_of(response)
                if response.status_code == 401 and not renewed_after_401:
                    # Revoked or signed with a key retired since: a fresh token, once.
                    renewed_after_401 = True
                    self._tokens.pop(client_id, None)
                    continue
                if response.status_code not in _RETRIED_STATUSES:
                    refused = IdempotencyConflict if error_code == "idempotency_conflict" else SubmissionRefused
                    raise refused(response.status_code, error_code, detail)
                last_problem = f"{response.status_code} {error_code}: {detail}"
                wait = retry_after_seconds(response.headers.get("retry-after"), backoff)
            if attempt == self._max_attempts:
                break
            wait = min(wait, self._max_wait)
            logger.warning(
                "submission %s for %s: %s; attempt %d of %d in %.1f s",
                idempotency_key, client_id, last_problem, attempt + 1, self._max_attempts, wait,
            )
            self._sleep(wait)
            backoff = min(backoff * 2, self._max_wait)
        raise SubmissionUnavailable(f"gave up after {self._max_attempts} attempts: {last_problem}")

    def _post(self, files: Sequence[Path], headers: dict[str, str], params: dict[str, str] | None) -> httpx.Response:
        with contextlib.ExitStack() as stack:
            parts = [("files", (path.name, stack.enter_context(open(path, "rb")))) for path in files]
            return self._http.post(self._url, files=parts, headers=headers, params=params)

    def _token(self, client_id: str) -> str:
        cached = self._tokens.get(client_id)
        if cached is not None and time.monotonic() < cached.renew_at:
            return cached.token
        client = self._ledger.get_client(client_id)
        if client is None:
            raise SubmissionRefused(400, "unknown_client", f"no client {client_id}")
        if client.disabled_at is not None:
            raise SubmissionRefused(403, "client_disabled", f"client {client_id} is disabled")
        if self._codec is None:
            self._codec = TokenCodec(self._settings, self._ledger)  # SettingsError without the signing secret
        self._codec.refresh()  # the current signing key and the client's latest cut-off
        issued = self._codec.issue(client)
        renew_at = time.monotonic() + issued.expires_in * (1 - TOKEN_RENEW_MARGIN)
        self._tokens[client_id] = _CachedToken(issued.token, renew_at)
        return issued.token
