"""The ledger of clients, batches and jobs (SQLAlchemy; SQLite or PostgreSQL)."""

from conveyor.ledger.database import create_ledger_engine
from conveyor.ledger.records import BatchRecord, ClientRecord, JobRecord, NewJob
from conveyor.ledger.repository import DuplicateIdempotencyKey, Ledger
from conveyor.ledger.schema import BatchStatus, JobState

__all__ = [
    "BatchRecord",
    "BatchStatus",
    "ClientRecord",
    "DuplicateIdempotencyKey",
    "JobRecord",
    "JobState",
    "Ledger",
    "NewJob",
    "create_ledger_engine",
]
