"""The gateway's HTTP API as the CLI uses it: a token per profile, renewed
when it expires; 429 waited out with the server's ``Retry-After`` (saying so);
every other API error raised with its status, code and detail."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from conveyor.cli.profiles import Profile, save
from conveyor.submission_client import retry_after_seconds

MAX_RATE_LIMIT_WAITS = 10


class ApiFailure(Exception):
    """The API answered with an error (``status`` 0: it could not be reached)."""

    def __init__(self, status: int, error: str, detail: str, retry_after: str | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}" if status else f"{error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.retry_after = retry_after


def issue_token(client: httpx.Client, url: str, client_id: str, client_secret: str) -> tuple[str, float]:
    """A token for the credential, and when it expires (seconds since the epoch)."""
    response = _send(
        client, "POST", f"{url}/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
    )
    body = response.json()
    return body["access_token"], time.time() + float(body["expires_in"])


def _send(client: httpx.Client, method: str, url: str, **arguments: Any) -> httpx.Response:
    try:
        response = client.request(method, url, **arguments)
    except httpx.HTTPError as error:
        raise ApiFailure(0, "unreachable", f"{url}: {error}") from None
    if response.status_code >= 400:
        try:
            body = response.json()
            error, detail = str(body.get("error", "error")), str(body.get("detail", ""))
        except ValueError:
            error, detail = "error", response.text[:300]
        raise ApiFailure(response.status_code, error, detail, response.headers.get("retry-after"))
    return response


class Api:
    def __init__(
        self, profile_name: str, profile: Profile, notify: Callable[[str], None], client: httpx.Client | None = None
    ) -> None:
        self.profile_name = profile_name
        self.profile = profile
        self.notify = notify
        self.client = client or httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0))

    def _token(self) -> str:
        if not self.profile.token_is_fresh():
            token, expires_at = issue_token(self.client, self.profile.url, self.profile.client_id, self.profile.client_secret)
            self.profile.access_token, self.profile.expires_at = token, expires_at
            save(self.profile_name, self.profile)
        return self.profile.access_token

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body_factory: Callable[[], dict[str, Any]] | None = None,
        **arguments: Any,
    ) -> httpx.Response:
        """Send, renewing the token once on 401 and waiting out 429s; ``body_factory``
        builds the (streamed) content afresh for each attempt."""
        renewed = False
        for _ in range(MAX_RATE_LIMIT_WAITS):
            sent_headers = {**(headers or {}), "Authorization": f"Bearer {self._token()}"}
            content = body_factory() if body_factory else {}
            try:
                return _send(self.client, method, f"{self.profile.url}{path}", headers=sent_headers, **arguments, **content)
            except ApiFailure as failure:
                if failure.status == 401 and not renewed:
                    self.profile.access_token, renewed = "", True
                    continue
                if failure.status != 429:
                    raise
                wait = retry_after_seconds(failure.retry_after, 1.0)
                self.notify(f"rate limited ({failure.detail}); waiting {wait:.0f} s as the server asks")
                time.sleep(wait)
        raise ApiFailure(429, "rate_limited", f"still rate limited after {MAX_RATE_LIMIT_WAITS} waits")

    def json(self, method: str, path: str, **arguments: Any) -> Any:
        return self.request(method, path, **arguments).json()

    def paged(self, path: str, key: str, **params: Any) -> Iterable[dict[str, Any]]:
        """Every item of a cursor-paged listing."""
        cursor = None
        while True:
            page = self.json("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            yield from page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return
