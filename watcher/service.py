"""The directory watcher: files that land in watched directories become batches.

Directories come from the ledger (``watched_directories``): those named by
``CONVEYOR_WATCH_DIRECTORIES`` are written there at start-up, and the admin
API adds and removes others.  The service re-reads the list every
:data:`RECONCILE_SECONDS`, so changes take effect without a restart.

For each directory a watchdog observer reports filesystem events; an event
makes a file a candidate, and a candidate is examined on every tick until it
has settled (:mod:`watcher.settling`).  A settled file is hashed (SHA-256,
streamed); content the directory has submitted before (the ledger's
``watched_files``) is skipped, the rest is submitted through the HTTP API
(:class:`~conveyor.submission_client.SubmissionClient`) and recorded.  At
start, and every :data:`RESCAN_SECONDS` as a safety net for lost events,
every file of every directory is looked at too.

**One file per batch.**  Each settled file is its own batch, under the
idempotency key ``watch-<directory id>-<sha256>``: the key names the content
and nothing else, so a watcher that crashes between submitting and recording,
or a second watcher racing the first, gets the batch already made back
instead of a new one.  Grouping files into batches would tie the key to
whichever files happened to settle together, which differs between two
watchers or before and after a crash.

**Which files.**  Regular files (not symlinks) whose name ends with one of the
directory's extensions (case-insensitive), in the directory itself or, for a
recursive one, below it; never dotfiles, files in hidden directories, or
temporary names (``*.part``, ``*.tmp``, ``*~``, ``~$*``, ``#*#``...), and
never empty files (the API refuses them; they are looked at again once
written).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from conveyor.ledger import Ledger
from conveyor.ledger.watching import WatchedDirectory, WatchLedger, normalise_path
from conveyor.settings import PREFIX, Settings, SettingsError
from conveyor.submission_client import (
    IdempotencyConflict,
    SubmissionClient,
    SubmissionRefused,
    SubmissionUnavailable,
)
from watcher.settling import FileState, SettleTracker, file_state

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.25
RECONCILE_SECONDS = 2.0
RESCAN_SECONDS = 60.0
RETRY_SECONDS = 30.0  # a file whose submission failed for a transient reason is tried again after this
HASH_CHUNK_BYTES = 1024 * 1024
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".swp", ".swx", ".crdownload", ".download", "~")
_IGNORED_EVENTS = {"opened", "closed_no_write"}  # our own reads cause these


class Submitter(Protocol):
    """What the service submits through (:class:`~conveyor.submission_client.SubmissionClient`)."""

    def submit(self, client_id: str, files: list[Path], idempotency_key: str) -> str: ...

    def close(self) -> None: ...


class Stopping(Exception):
    """Raised out of a wait when the service is asked to stop."""


def idempotency_key(directory_id: str, sha256: str) -> str:
    return f"watch-{directory_id}-{sha256}"


def _visible_parts(path: Path, directory: WatchedDirectory) -> tuple[str, ...] | None:
    """``path`` relative to the directory, or ``None`` if it is outside, the directory itself, or hidden."""
    try:
        parts = path.relative_to(directory.path).parts
    except ValueError:
        return None
    if not parts or any(part.startswith(".") for part in parts):
        return None
    return parts


def eligible(path: Path, directory: WatchedDirectory) -> bool:
    """Whether ``path`` is a file name ``directory`` submits (by name only: see the module docstring)."""
    parts = _visible_parts(path, directory)
    if parts is None or (len(parts) > 1 and not directory.recursive):
        return False
    name = parts[-1].lower()
    if name.endswith(TEMPORARY_SUFFIXES) or name.startswith("~$") or (name.startswith("#") and name.endswith("#")):
        return False
    return name.endswith(directory.extensions)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def regular_file_state(path: Path) -> FileState | None:
    """Like :func:`~watcher.settling.file_state`, but a symlink is never a file to submit."""
    return None if path.is_symlink() else file_state(path)


class _EventSink(FileSystemEventHandler):
    """Hands the paths of filesystem events (observer thread) to the service's tick (main thread)."""

    def __init__(self, paths: deque[Path]) -> None:
        self._paths = paths

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENTS:
            return
        self._paths.append(Path(os.fsdecode(event.src_path)))
        if event.dest_path:
            self._paths.append(Path(os.fsdecode(event.dest_path)))


@dataclass
class DirectoryWatch:
    """One watched directory: its observer, its candidates and what it has handled."""

    directory: WatchedDirectory
    tracker: SettleTracker
    observer: BaseObserver | None = None
    events: deque[Path] = field(default_factory=deque)
    handled: dict[Path, FileState] = field(default_factory=dict)  # state at which a path was last dealt with
    refused: set[str] = field(default_factory=set)  # digests the API refused for good (this process's life)
    scanned_at: float | None = None  # the first tick scans everything

    @property
    def root(self) -> Path:
        return Path(self.directory.path)

    def start(self) -> None:
        observer = Observer()
        observer.schedule(_EventSink(self.events), self.directory.path, recursive=self.directory.recursive)
        observer.daemon = True
        observer.start()
        self.observer = observer

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None

    def healthy(self) -> bool:
        return self.observer is not None and self.observer.is_alive() and self.root.is_dir()

    def files(self, below: Path | None = None) -> Iterator[Path]:
        """Every file name under ``below`` (default: the root) this directory would consider."""
        top = below or self.root
        if not self.directory.recursive:
            with os.scandir(top) as entries:
                yield from (Path(entry.path) for entry in entries if entry.is_file(follow_symlinks=False))
            return
        for folder, subfolders, names in os.walk(top, onerror=lambda error: logger.warning("scan: %s", error)):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            yield from (Path(folder, name) for name in names)

    def consider(self, path: Path) -> None:
        """Make ``path`` a candidate if it is a file of ours that changed since we last dealt with it."""
        if not eligible(path, self.directory):
            return
        state = regular_file_state(path)
        if state is None:
            self.tracker.discard(path)
            self.handled.pop(path, None)
        elif state != self.handled.get(path):
            self.tracker.observe(path, state)

    def scan(self, below: Path | None = None) -> None:
        try:
            for path in self.files(below):
                self.consider(path)
        except OSError as error:
            logger.warning("directory %s: cannot scan %s: %s", self.directory.id, below or self.root, error)

    def drain_events(self) -> None:
        while self.events:
            path = self.events.popleft()
            if path.is_dir() and not path.is_symlink():
                if self.directory.recursive and _visible_parts(path, self.directory):
                    self.scan(path)  # a directory moved or copied in brings files without events of their own
            else:
                self.consider(path)

    def refresh_candidates(self) -> None:
        for path in self.tracker.candidates():
            self.tracker.observe(path, regular_file_state(path))


class WatcherService:
    """Runs until :meth:`stop`: reconciles with the ledger, watches, settles, submits."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        submitter: Submitter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        if submitter is None:
            settings.require_jwt_secret()  # fail at start, not at the first file
        self.ledger = ledger
        self.watching = WatchLedger(ledger.engine)
        self._stopping = threading.Event()
        self.submitter: Submitter = submitter or SubmissionClient(settings, ledger, sleep=self._wait)
        self._clock = clock
        self._watches: dict[str, DirectoryWatch] = {}
        self._missing: set[str] = set()  # ids of directories that are not there (logged once)
        self._reconciled_at = -RECONCILE_SECONDS

    # Life cycle

    def configure(self) -> list[WatchedDirectory]:
        """Write the directories of ``CONVEYOR_WATCH_DIRECTORIES`` to the ledger, with the configured options."""
        if not self.settings.watch_directories:
            return []
        client_id = self.settings.watch_client_id
        if not client_id:
            raise SettingsError(f"{PREFIX}WATCH_CLIENT_ID: required when {PREFIX}WATCH_DIRECTORIES is set")
        client = self.ledger.get_client(client_id)
        if client is None or client.disabled_at is not None:
            raise SettingsError(f"{PREFIX}WATCH_CLIENT_ID: no enabled client {client_id!r} in the ledger")
        configured = []
        for path in self.settings.watch_directories:
            directory = self.watching.ensure_directory(
                normalise_path(os.path.abspath(path)),
                client_id,
                self.settings.watch_recursive,
                self.settings.watch_extensions,
                self.settings.watch_settle_seconds,
            )
            logger.info("configured directory %s: %s", directory.id, directory.path)
            configured.append(directory)
        return configured

    def run(self) -> None:
        """Watch until :meth:`stop` is called; then stop every observer."""
        self.configure()
        logger.info("watcher started; submitting to %s", self.settings.gateway_url)
        try:
            while not self._stopping.is_set():
                try:
                    self.tick()
                except Stopping:
                    break
                except Exception:
                    logger.exception("watcher tick failed; going on")
                self._stopping.wait(TICK_SECONDS)
        finally:
            self.close()
            logger.info("watcher stopped")

    def stop(self) -> None:
        """Ask :meth:`run` to return (safe from a signal handler or another thread)."""
        self._stopping.set()

    def close(self) -> None:
        """Stop every observer and the submitter's connections."""
        for watch in self._watches.values():
            watch.stop()
        self._watches.clear()
        self.submitter.close()

    def watched(self) -> list[WatchedDirectory]:
        """The directories being watched now."""
        return [watch.directory for watch in self._watches.values()]

    def _wait(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise Stopping()

    # One tick

    def tick(self) -> None:
        now = self._clock()
        if now - self._reconciled_at >= RECONCILE_SECONDS:
            self.reconcile()
            self._reconciled_at = now
        for watch in list(self._watches.values()):
            if self._stopping.is_set():
                return
            if watch.scanned_at is None or now - watch.scanned_at >= RESCAN_SECONDS:
                watch.scan()
                watch.scanned_at = now
            watch.drain_events()
            watch.refresh_candidates()
            settled = watch.tracker.settled()
            if settled:
                self.submit_settled(watch, settled)

    def reconcile(self) -> None:
        """Start watching directories new in the ledger, stop those gone or changed, retry missing ones."""
        wanted = {directory.id: directory for directory in self.watching.list_directories()}
        for directory_id, watch in list(self._watches.items()):
            if wanted.get(directory_id) != watch.directory or not watch.healthy():
                watch.stop()
                del self._watches[directory_id]
                logger.info("stopped watching %s (%s)", watch.directory.path, directory_id)
        self._missing &= set(wanted)
        for directory_id, directory in wanted.items():
            if directory_id not in self._watches:
                self._start(directory)

    def _start(self, directory: WatchedDirectory) -> None:
        if not Path(directory.path).is_dir():
            if directory.id not in self._missing:
                logger.warning("directory %s (%s) is not there; watching it once it is", directory.path, directory.id)
                self._missing.add(directory.id)
            return
        watch = DirectoryWatch(directory, SettleTracker(directory.settle_seconds, self._clock))
        try:
            watch.start()
        except OSError as error:
            if directory.id not in self._missing:
                logger.error("cannot watch %s (%s): %s", directory.path, directory.id, error)
                self._missing.add(directory.id)
            return
        self._missing.discard(directory.id)
        self._watches[directory.id] = watch
        logger.info(
            "watching %s (%s) for %s: extensions %s, recursive %s, settle %d s",
            directory.path, directory.id, directory.client_id, ",".join(directory.extensions),
            directory.recursive, directory.settle_seconds,
        )

    # Submitting

    def submit_settled(self, watch: DirectoryWatch, settled: list[tuple[Path, FileState]]) -> None:
        """Hash the settled files and submit the content this directory never submitted, one file per batch."""
        by_digest: dict[str, list[tuple[Path, FileState]]] = {}
        for path, state in settled:
            if state.size == 0:
                watch.handled[path] = state
                continue
            try:
                digest = sha256_of(path)
            except OSError as error:
                logger.warning("cannot read %s: %s; trying again later", path, error)
                watch.tracker.retry_later(path, state, RETRY_SECONDS)
                continue
            if regular_file_state(path) != state:  # written to while we read it: not settled after all
                watch.tracker.observe(path, regular_file_state(path))
                continue
            by_digest.setdefault(digest, []).append((path, state))
        if not by_digest:
            return
        directory = watch.directory
        known = self.watching.submitted_digests(directory.id, by_digest)
        for digest, files in by_digest.items():
            if digest in known:
                logger.info("skipping %s: content %s was submitted from %s before", files[0][0], digest[:12], directory.path)
                watch.handled.update(files)
                continue
            if digest in watch.refused:
                watch.handled.update(files)
                continue
            try:
                self._submit(directory, files[0][0], digest)
            except SubmissionRefused as error:
                logger.error("%s refused by the API: %s; not submitted again unless it changes", files[0][0], error)
                watch.refused.add(digest)
                watch.handled.update(files)
                continue
            except (SubmissionUnavailable, OSError) as error:
                logger.warning("%s not submitted: %s; trying again in %.0f s", files[0][0], error, RETRY_SECONDS)
                for path, state in files:
                    watch.tracker.retry_later(path, state, RETRY_SECONDS)
                continue
            except Exception:  # the ledger, most likely: keep the files for another try
                for path, state in files:
                    watch.tracker.retry_later(path, state, RETRY_SECONDS)
                raise
            watch.handled.update(files)

    def _submit(self, directory: WatchedDirectory, path: Path, digest: str) -> str:
        key = idempotency_key(directory.id, digest)
        try:
            batch_id = self.submitter.submit(directory.client_id, [path], key)
        except IdempotencyConflict:
            # The same content under another name was submitted with this key (by a second
            # watcher, or before a crash): that batch is this content's batch.
            batch = self.ledger.find_by_idempotency_key(directory.client_id, key)
            if batch is None:
                raise
            batch_id = batch.id
        if self.watching.record_submission(directory.id, digest, str(path), batch_id):
            logger.info("submitted %s as batch %s (content %s)", path, batch_id, digest[:12])
        else:
            logger.info("%s (content %s) was already recorded as batch %s", path, digest[:12], batch_id)
        return batch_id
