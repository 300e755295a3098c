"""A webhook receiver on a free local port, for tests that follow a webhook to its destination."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(ThreadingHTTPServer):
    """Answers the first ``failures`` deliveries with 500, then 204; keeps every body and signature."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[bytes, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    @classmethod
    @contextlib.contextmanager
    def running(cls, failures: int = 0) -> Iterator[Receiver]:
        server = cls(failures)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield server
        finally:
            server.shutdown()
            server.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((body, self.headers["Conveyor-Signature"]))
        status = 500 if len(self.server.received) <= self.server.failures else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass
