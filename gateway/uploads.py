"""Streaming multipart receiver: request body → blob store, never whole in memory.

Starlette's ``request.form()`` spools every file without a size cap, so the
gateway parses the body itself with python-multipart's streaming parser, writes
each file part to a :class:`~conveyor.blobs.BlobWriter` as it arrives (hashing
on the way), and stops at the first part over the caps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from conveyor.blobs import BlobStore, BlobTooLarge, BlobWriter
from conveyor.content_types import SNIFF_BYTES, refused_type
from gateway.errors import ApiError

MAX_FILENAME_LENGTH = 255
TEXT_FIELDS = frozenset({"callback_url", "thresholds"})  # the batch's options, sent beside the files
MAX_TEXT_FIELD_BYTES = 64 * 1024
_UNSAFE_FILENAME_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class UploadLimits:
    max_files: int
    max_file_bytes: int


@dataclass(frozen=True)
class ReceivedFile:
    filename: str
    blob_sha256: str
    size_bytes: int


@dataclass(frozen=True)
class ReceivedUpload:
    files: list[ReceivedFile]
    fields: dict[str, str]  # text fields named in TEXT_FIELDS


def display_filename(raw: str) -> str:
    """The client's filename reduced to a safe label: last path segment, no control characters."""
    name = _UNSAFE_FILENAME_CHARACTERS.sub("", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:MAX_FILENAME_LENGTH] or "unnamed"


class _MultipartReceiver:
    """python-multipart callbacks that route each file part into the blob store
    and keep the few small text fields a batch may carry."""

    def __init__(self, store: BlobStore, limits: UploadLimits, created: list[str]) -> None:
        self._store = store
        self._limits = limits
        self._created = created
        self._head = b""
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._writer: BlobWriter | None = None
        self._filename = ""
        self._field: str | None = None
        self._field_value = b""
        self.files: list[ReceivedFile] = []
        self.fields: dict[str, str] = {}
        self.finished = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition"))
        field = options.get(b"name", b"").decode("utf-8", "replace")
        if disposition == b"form-data" and b"filename" not in options and field in TEXT_FIELDS:
            if field in self.fields:
                raise ApiError(400, "bad_request", f"form field {field!r} is given twice")
            self._field, self._field_value = field, b""
            return
        if disposition != b"form-data" or b"filename" not in options:
            raise ApiError(
                400, "bad_request",
                f"unexpected form field {field!r}: send each document as a file part "
                f"(text fields allowed: {', '.join(sorted(TEXT_FIELDS))})",
            )
        if len(self.files) >= self._limits.max_files:
            raise ApiError(413, "too_many_files", f"a batch holds at most {self._limits.max_files} files")
        self._filename = display_filename(options[b"filename"].decode("utf-8", "replace"))
        self._writer = self._store.writer(max_bytes=self._limits.max_file_bytes)
        self._head = b""

    def _check_type(self) -> None:
        mime = refused_type(self._head)
        if mime is not None:
            raise ApiError(415, "unsupported_file_type", f"{self._filename} is {mime}, which no pipeline reads")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._field is not None:
            self._field_value += data[start:end]
            if len(self._field_value) > MAX_TEXT_FIELD_BYTES:
                raise ApiError(413, "field_too_large", f"form field {self._field!r} is over {MAX_TEXT_FIELD_BYTES} bytes")
            return
        assert self._writer is not None
        if len(self._head) < SNIFF_BYTES:
            self._head += data[start : min(end, start + SNIFF_BYTES - len(self._head))]
            if len(self._head) == SNIFF_BYTES:
                self._check_type()
        try:
            self._writer.write(data[start:end])
        except BlobTooLarge:
            raise ApiError(
                413, "file_too_large", f"{self._filename} is larger than {self._limits.max_file_bytes} bytes"
            ) from None

    def _on_part_end(self) -> None:
        if self._field is not None:
            try:
                self.fields[self._field] = self._field_value.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "bad_request", f"form field {self._field!r} is not UTF-8 text") from None
            self._field = None
            return
        assert self._writer is not None
        if self._writer.size == 0:
            raise ApiError(400, "empty_file", f"{self._filename} is empty")
        if len(self._head) < SNIFF_BYTES:
            self._check_type()
        writer, self._writer = self._writer, None
        digest = writer.commit()
        if writer.created:
            self._created.append(digest)
        self.files.append(ReceivedFile(filename=self._filename, blob_sha256=digest, size_bytes=writer.size))

    def _on_end(self) -> None:
        self.finished = True

    def discard_open_part(self) -> None:
        if self._writer is not None:
            self._writer.discard()
            self._writer = None


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise ApiError(415, "unsupported_media_type", "upload documents as multipart/form-data with a boundary")
    return options[b"boundary"]


async def receive_upload(
    request: Request, store: BlobStore, limits: UploadLimits, created: list[str]
) -> ReceivedUpload:
    """Stream every file part of ``request`` into ``store`` (at least one file
    is required) and collect its text fields.

    The digest of every blob this upload added to the store is appended to
    ``created``, so that the caller can take them back if the upload is
    refused (see :func:`gateway.endpoints.batches.withdraw_blobs`).
    """
    receiver = _MultipartReceiver(store, limits, created)
    try:
        parser = MultipartParser(_boundary(request), receiver.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise ApiError(400, "malformed_multipart", f"the multipart body could not be parsed: {error}") from None
    except ClientDisconnect:
        raise ApiError(400, "incomplete_upload", "the client closed the connection before the upload ended") from None
    finally:
        receiver.discard_open_part()
    if not receiver.finished:
        raise ApiError(400, "incomplete_upload", "the multipart body ended before its closing boundary")
    if not receiver.files:
        raise ApiError(400, "no_files", "the upload holds no files")
    return ReceivedUpload(files=receiver.files, fields=receiver.fields)
