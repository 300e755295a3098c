"""What the gateway's endpoints use, built once when the app starts."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from conveyor.blobs import BlobStore
from conveyor.ledger import Ledger
from conveyor.settings import Settings
from conveyor.tiers import Tiers
from gateway.access_tokens import TokenCodec
from gateway.publisher import JobPublisher


@dataclass(frozen=True)
class GatewayServices:
    settings: Settings
    tiers: Tiers
    ledger: Ledger
    blobs: BlobStore
    tokens: TokenCodec
    publisher: JobPublisher


def services(request: Request) -> GatewayServices:
    return request.app.state.services
