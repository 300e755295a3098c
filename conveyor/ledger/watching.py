"""Watched directories and the content each one has submitted.

A watched directory's id is derived from its path (UUID 5), so the same path
always has the same id: removing a directory and adding it again keeps its
submission history (``watched_files`` is keyed by directory id and SHA-256 and
is never deleted with the directory), and content submitted once is never
submitted again from that path, whoever watches it.

Paths are stored absolute and normalised (:func:`os.path.normpath`), so
``/data/in/`` and ``/data/./in`` are the same directory.  Extensions are
stored lower-case, comma-separated, each starting with a dot.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.ledger.access import UnknownClient, now
from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.schema import clients, watched_directories, watched_files

MAX_PATH_LENGTH = 1000
MAX_EXTENSIONS_LENGTH = 500
MAX_SETTLE_SECONDS = 86_400
_EXTENSION = re.compile(r"\.[a-z0-9][a-z0-9_+-]*(?:\.[a-z0-9][a-z0-9_+-]*)*", re.ASCII | re.IGNORECASE)
_ID_NAMESPACE = uuid.UUID("3f6c1b52-1f0e-4d8a-9a51-6a1d2c0e7b44")
_DIGESTS_PER_QUERY = 500


class InvalidWatchedDirectory(ValueError):
    """A path, extension list or settle time is not acceptable (the message says which)."""


class DuplicateWatchedDirectory(Exception):
    """The path is watched already."""

    def __init__(self, path: str, directory_id: str) -> None:
        super().__init__(f"{path} is watched already (directory {directory_id})")
        self.path = path
        self.directory_id = directory_id


@dataclass(frozen=True)
class WatchedDirectory:
    id: str
    path: str
    client_id: str
    recursive: bool
    extensions: tuple[str, ...]
    settle_seconds: int
    created_at: datetime


def _directory(row: Row) -> WatchedDirectory:
    values = row._asdict()
    values["extensions"] = tuple(values["extensions"].split(","))
    return WatchedDirectory(**values)


def normalise_path(path: str | os.PathLike[str]) -> str:
    """``path`` absolute and normalised; :class:`InvalidWatchedDirectory` if it is relative or unusable."""
    text = os.fspath(path)
    if not text or any(ord(character) < 32 or ord(character) == 127 for character in text):
        raise InvalidWatchedDirectory("path must be a non-empty absolute path without control characters")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidWatchedDirectory("path must be valid Unicode text") from None
    if not os.path.isabs(text):
        raise InvalidWatchedDirectory(f"path must be absolute, got {text!r}")
    normalised = os.path.normpath(text)
    if normalised.startswith("//"):  # POSIX keeps a leading double slash; it names nothing different here
        normalised = "/" + normalised.lstrip("/")
    if len(normalised) > MAX_PATH_LENGTH:
        raise InvalidWatchedDirectory(f"path must be at most {MAX_PATH_LENGTH} characters")
    return normalised


def normalise_extensions(extensions: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased, de-duplicated extensions in their given order, each like ``.txt`` or ``.tar.gz``."""
    result: list[str] = []
    for extension in extensions:
        if not isinstance(extension, str) or not _EXTENSION.fullmatch(extension):
            raise InvalidWatchedDirectory(
                f"extension {extension!r} must be like .txt or .tar.gz: a dot, then ASCII letters, digits, '_', '+', '-'"
            )
        if extension.lower() not in result:
            result.append(extension.lower())
    if not result:
        raise InvalidWatchedDirectory("at least one extension is needed")
    if len(",".join(result)) > MAX_EXTENSIONS_LENGTH:
        raise InvalidWatchedDirectory(f"the extensions must be at most {MAX_EXTENSIONS_LENGTH} characters together")
    return tuple(result)


def validate_settle_seconds(settle_seconds: int) -> int:
    if isinstance(settle_seconds, bool) or not isinstance(settle_seconds, int):
        raise InvalidWatchedDirectory("settle_seconds must be an integer")
    if not 1 <= settle_seconds <= MAX_SETTLE_SECONDS:
        raise InvalidWatchedDirectory(f"settle_seconds must be between 1 and {MAX_SETTLE_SECONDS}")
    return settle_seconds


def directory_id_for(path: str) -> str:
    """The id of the watched directory at the normalised ``path`` (the same whenever it is added)."""
    return str(uuid.uuid5(_ID_NAMESPACE, path))


class WatchLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Directories

    def add_directory(
        self, path: str, client_id: str, recursive: bool, extensions: Sequence[str], settle_seconds: int
    ) -> WatchedDirectory:
        """Start watching ``path`` for ``client_id``.

        Raises :class:`InvalidWatchedDirectory` for bad arguments,
        :class:`~conveyor.ledger.access.UnknownClient` for an unknown client and
        :class:`DuplicateWatchedDirectory` if the path is watched already.
        """
        values = self._values(path, client_id, recursive, extensions, settle_seconds)
        try:
            with write_transaction(self.engine) as connection:
                if connection.execute(select(clients.c.id).where(clients.c.id == client_id)).first() is None:
                    raise UnknownClient(client_id)
                if connection.execute(select(watched_directories.c.id).where(watched_directories.c.path == values["path"])).first():
                    raise DuplicateWatchedDirectory(values["path"], values["id"])
                row = connection.execute(insert(watched_directories).returning(*watched_directories.c), values).one()
        except IntegrityError:  # a concurrent add of the same path won
            raise DuplicateWatchedDirectory(values["path"], values["id"]) from None
        return _directory(row)

    def ensure_directory(
        self, path: str, client_id: str, recursive: bool, extensions: Sequence[str], settle_seconds: int
    ) -> WatchedDirectory:
        """Watch ``path`` with exactly these settings, adding it or updating its row (configured directories)."""
        values = self._values(path, client_id, recursive, extensions, settle_seconds)
        changes = {name: values[name] for name in ("client_id", "recursive", "extensions", "settle_seconds")}
        try:
            return self.add_directory(path, client_id, recursive, extensions, settle_seconds)
        except DuplicateWatchedDirectory:
            pass
        with write_transaction(self.engine) as connection:
            row = connection.execute(
                update(watched_directories)
                .where(watched_directories.c.path == values["path"])
                .values(**changes)
                .returning(*watched_directories.c)
            ).one()
        return _directory(row)

    def remove_directory(self, directory_id: str) -> bool:
        """Stop watching; the directory's submission history is kept (see the module docstring)."""
        with write_transaction(self.engine) as connection:
            return bool(
                connection.execute(delete(watched_directories).where(watched_directories.c.id == directory_id)).rowcount
            )

    def get_directory(self, directory_id: str) -> WatchedDirectory | None:
        with read_transaction(self.engine) as connection:
            row = connection.execute(
                select(watched_directories).where(watched_directories.c.id == directory_id)
            ).first()
        return _directory(row) if row else None

    def list_directories(self) -> list[WatchedDirectory]:
        """Every watched directory, by path."""
        query = select(watched_directories).order_by(watched_directories.c.path)
        with read_transaction(self.engine) as connection:
            return [_directory(row) for row in connection.execute(query)]

    # Submission history

    def submitted_digests(self, directory_id: str, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` that ``directory_id`` has submitted already."""
        wanted = sorted(set(digests))
        found: set[str] = set()
        with read_transaction(self.engine) as connection:
            for start in range(0, len(wanted), _DIGESTS_PER_QUERY):
                query = select(watched_files.c.sha256).where(
                    watched_files.c.directory_id == directory_id,
                    watched_files.c.sha256.in_(wanted[start : start + _DIGESTS_PER_QUERY]),
                )
                found.update(connection.execute(query).scalars())
        return found

    def record_submission(self, directory_id: str, sha256: str, path: str, batch_id: str) -> bool:
        """Remember that ``directory_id`` submitted ``sha256`` as ``batch_id``; False if it was known already
        (a second watcher, or a retry after a crash, recorded it first)."""
        values = {"directory_id": directory_id, "sha256": sha256, "path": path, "batch_id": batch_id, "submitted_at": now()}
        try:
            with write_transaction(self.engine) as connection:
                connection.execute(insert(watched_files), values)
        except IntegrityError:
            return False
        return True

    def submission(self, directory_id: str, sha256: str) -> tuple[str, str] | None:
        """(path, batch id) of an earlier submission of ``sha256`` from ``directory_id``."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(
                select(watched_files.c.path, watched_files.c.batch_id).where(
                    watched_files.c.directory_id == directory_id, watched_files.c.sha256 == sha256
                )
            ).first()
        return (row.path, row.batch_id) if row else None

    @staticmethod
    def _values(
        path: str, client_id: str, recursive: bool, extensions: Sequence[str], settle_seconds: int
    ) -> dict[str, object]:
        normalised = normalise_path(path)
        return {
            "id": directory_id_for(normalised),
            "path": normalised,
            "client_id": client_id,
            "recursive": bool(recursive),
            "extensions": ",".join(normalise_extensions(extensions)),
            "settle_seconds": validate_settle_seconds(settle_seconds),
            "created_at": now(),
        }
