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
from gateway.uploads import UploadLimits


@dataclass(frozen=True)
class GatewayServices:
    settings: Settings
    tiers: Tiers
    ledger: Ledger
    blobs: BlobStore
    tokens: TokenCodec
    publisher: JobPublisher

    @property
    def upload_limits(self) -> UploadLimits:
        return UploadLimits(
            max_files=self.settings.max_files_per_batch, max_file_bytes=self.settings.max_file_bytes
        )


def services(request: Request) -> GatewayServices:
    return request.app.state.services
