"""Content-addressed blob store on a local directory.

A blob's name is the SHA-256 of its bytes, so the client's filename never
reaches the file system and identical uploads are stored once.  Writes go to a
temporary file in the same directory tree and are renamed into place after an
fsync, so a reader never sees a partial blob.

Deleting a blob while someone uploads the same content
------------------------------------------------------
Retention deletes a blob once no job in the ledger refers to it.  An upload of
identical content that finds the blob already stored drops its own copy and
records its job a moment later, so for that moment the blob is referenced by
nothing but the upload in flight.  Two rules close that window:

* a writer that finds its blob already stored refreshes the blob's mtime
  (``os.utime``): the blob looks freshly written;
* :meth:`BlobStore.delete_if_idle` deletes only blobs not modified since a
  cutoff (retention passes *now minus a grace period*, an hour), and does so
  by first renaming the blob aside and checking its mtime again: a refresh
  that raced with the rename puts the blob back, and a refresh that comes
  after the rename finds no file, so that writer stores its own copy.

An upload whose rows are recorded more than the grace period after its first
blob was written could still lose that blob: keep uploads shorter than that.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
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
            try:
                os.utime(destination)  # looks fresh to retention (see the module's docstring)
            except FileNotFoundError:
                pass  # retention has just taken it away: store this copy instead
            else:
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

    def delete_if_idle(self, digest: str, idle_since: float) -> bool:
        """Delete the blob unless it was modified at or after ``idle_since``
        (a POSIX timestamp); True if it was deleted.

        Safe against a concurrent upload of the same content: see the
        module's docstring.
        """
        path = self.path(digest)
        try:
            if path.stat().st_mtime >= idle_since:
                return False
            aside = self.tmp_dir / f"delete-{digest}-{uuid.uuid4().hex}"
            os.replace(path, aside)
        except FileNotFoundError:
            return False
        if aside.stat().st_mtime >= idle_since:  # refreshed between the check and the rename
            os.replace(aside, path)
            return False
        aside.unlink()
        return True
