"""What the gateway's endpoints use, built once when the app starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from conveyor.blobs import BlobStore
from conveyor.ledger import Ledger
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from conveyor.access_tokens import TokenCodec
from gateway.publisher import JobPublisher


P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class GatewayServices:
    settings: Settings
    tiers: Tiers
    ledger: Ledger
    blobs: BlobStore
    tokens: TokenCodec
    publisher: JobPublisher

    async def read_ledger(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a ledger read for a request.

        On SQLite (WAL) a read never waits for a lock and takes a fraction of a
        millisecond, less than handing it to a thread, so it runs on the event
        loop; on PostgreSQL, with its network round trips, it runs on the
        thread pool.  Writes always go to the thread pool (they may wait for
        SQLite's write lock).
        """
        if self.ledger.engine.dialect.name == "sqlite":
            return read(*args, **kwargs)
        return await run_in_threadpool(read, *args, **kwargs)


def services(request: Request) -> GatewayServices:
    return request.app.state.services
