"""Content-addressed blob store on a local directory.

A blob's name is the SHA-256 of its bytes, so the client's filename never
reaches the file system and identical uploads are stored once.  Writes go to a
temporary file in the same directory tree and are renamed into place after an
fsync, so a reader never sees a partial blob.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BlobTooLarge(Exception):
    """A blob being written grew past the writer's size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


class BlobWriter:
    """Streams one blob to a temporary file while hashing it.

    Call :meth:`write` for each chunk, then :meth:`commit` to move it into the
    store (returns the digest) or :meth:`discard` to drop it.
    """

    def __init__(self, store: BlobStore, max_bytes: int | None) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self.size = 0
        self.created = False
        descriptor, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self._path = Path(name)
        self._file: BinaryIO = os.fdopen(descriptor, "wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise BlobTooLarge(self._max_bytes)
        self._hash.update(data)
        self._file.write(data)

    def commit(self) -> str:
        """Make the blob durable and visible under its digest; returns the digest.

        ``created`` tells whether this write added the blob (False when the
        same content was already stored; the copy is dropped).
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = self._hash.hexdigest()
        destination = self._store.path(digest)
        if destination.exists():
            self._path.unlink()
            return digest
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path, destination)
        self.created = True
        return digest

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._path.unlink(missing_ok=True)


class BlobStore:
    """Blobs under ``root/ab/cd/<sha256>``; temporary files under ``root/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def writer(self, max_bytes: int | None = None) -> BlobWriter:
        return BlobWriter(self, max_bytes)

    def put(self, data: bytes) -> str:
        """Store ``data`` whole; for small, already-in-memory content."""
        writer = self.writer()
        try:
            writer.write(data)
            return writer.commit()
        except BaseException:
            writer.discard()
            raise

    def path(self, digest: str) -> Path:
        if not _SHA256_HEX.fullmatch(digest):
            raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)
