"""Worker middleware that records each worker process's heartbeat in the ledger.

After a worker process boots, a daemon thread writes its row in
``worker_heartbeats`` every ``HEARTBEAT_INTERVAL_SECONDS``: host, pid,
queues, start time and the messages it is processing; the row is deleted when
the process shuts down.  The API lists workers seen within
``LIVE_WITHIN_SECONDS`` (both in :mod:`conveyor.ledger.maintenance`); rows of
workers that died without a goodbye are pruned by the scheduler's
``prune_heartbeats`` job.

A ledger that cannot be written is logged and retried at the next beat; it
never stops the worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import dramatiq
from dramatiq.middleware import Middleware

from actors.metrics import LAST_HEARTBEAT
from conveyor.ledger.maintenance import HEARTBEAT_INTERVAL_SECONDS, MaintenanceLedger

logger = logging.getLogger(__name__)


class WorkerHeartbeat(Middleware):
    def __init__(self, ledger: MaintenanceLedger, interval: float = HEARTBEAT_INTERVAL_SECONDS) -> None:
        self.ledger = ledger
        self.interval = interval
        self.worker_id = ""
        self.queues: tuple[str, ...] = ()
        self.started_at = datetime.now(UTC)
        self._in_progress: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def jobs_in_progress(self) -> int:
        with self._lock:
            return len(self._in_progress)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.queues = tuple(sorted(worker.consumer_whitelist or broker.get_declared_queues()))
        self.started_at = datetime.now(UTC)
        self._stopped.clear()
        self.beat()
        self._thread = threading.Thread(target=self._run, name="conveyor-heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval)
        try:
            self.ledger.remove_heartbeat(self.worker_id)
        except Exception:
            logger.exception("could not remove the heartbeat of worker %s", self.worker_id)

    # Messages are tracked by id: a message skipped by an earlier middleware
    # reaches after_skip_message without having passed before_process_message.

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        with self._lock:
            self._in_progress.add(message.message_id)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._in_progress.discard(message.message_id)

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        with self._lock:
            self._in_progress.discard(message.message_id)

    def beat(self) -> None:
        """Write this worker's row now."""
        try:
            self.ledger.record_heartbeat(
                self.worker_id, socket.gethostname(), os.getpid(), self.queues, self.started_at, self.jobs_in_progress
            )
            LAST_HEARTBEAT.set(time.time())
        except Exception:
            logger.exception("could not record the heartbeat of worker %s", self.worker_id)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.beat()
