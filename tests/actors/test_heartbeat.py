"""The worker heartbeat middleware on a StubBroker worker and a real ledger."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import dramatiq
from dramatiq.brokers.stub import StubBroker

from actors.heartbeat import WorkerHeartbeat
from conveyor.ledger import Ledger
from conveyor.ledger.maintenance import MaintenanceLedger


def _live(maintenance: MaintenanceLedger) -> list:
    return maintenance.live_workers(datetime.now(UTC) - timedelta(seconds=30))


def test_a_worker_beats_while_running_counts_its_messages_and_leaves_at_shutdown(ledger: Ledger) -> None:
    maintenance = MaintenanceLedger(ledger.engine)
    heartbeat = WorkerHeartbeat(maintenance, interval=0.05)
    broker = StubBroker()
    broker.add_middleware(heartbeat)
    release = threading.Event()

    @dramatiq.actor(broker=broker, queue_name="documents")
    def hold() -> None:
        release.wait(10)

    broker.declare_queue("analysis")
    worker = dramatiq.Worker(broker, queues={"documents"}, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        (row,) = _live(maintenance)
        assert (row.queues, row.jobs_in_progress) == (("documents",), 0)
        hold.send()
        hold.send()
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while _live(maintenance)[0].jobs_in_progress != 2 and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
        assert _live(maintenance)[0].jobs_in_progress == 2
        release.set()
        broker.join("documents")
        worker.join()
        assert heartbeat.jobs_in_progress == 0
    finally:
        release.set()
        worker.stop()
    assert _live(maintenance) == []


def test_a_ledger_failure_never_stops_the_beat(ledger: Ledger) -> None:
    class Broken(MaintenanceLedger):
        def record_heartbeat(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("database down")

    heartbeat = WorkerHeartbeat(Broken(ledger.engine))
    heartbeat.beat()  # logged, not raised
