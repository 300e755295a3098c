"""Stored schedules: a cron spec that re-runs a template batch or a directory.

Cron specs have five fields (minute hour day-of-month month day-of-week) or
are one of :data:`CRON_ALIASES`, and are evaluated in UTC by ``cronsim``.

A run is claimed by :meth:`ScheduleLedger.claim_run`, a conditional update
that moves ``next_run_at`` on only if it still holds the value the claimer
read: of several schedulers that find the same schedule due, exactly one
wins the run.  A scheduler that was down for a while runs a schedule once,
not once per missed slot: the next run is computed from the present.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError
from sqlalchemy import Engine, Row, delete, insert, select, update

from conveyor.ledger.access import now
from conveyor.ledger.database import read_transaction, write_transaction
from conveyor.ledger.schema import schedules

SOURCE_KINDS = ("batch", "directory")
CRON_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
}
MAX_NAME_LENGTH = 200
MAX_SOURCE_LENGTH = 1000
MAX_CRON_LENGTH = 100


class InvalidSchedule(ValueError):
    """A schedule's cron spec, source kind, name or source is not acceptable (the message says which)."""


@dataclass(frozen=True)
class ScheduleRecord:
    id: str
    client_id: str
    name: str
    cron: str
    source_kind: str
    source: str
    enabled: bool
    created_at: datetime
    next_run_at: datetime
    last_run_at: datetime | None
    last_batch_id: str | None


def _schedule(row: Row) -> ScheduleRecord:
    return ScheduleRecord(**row._asdict())


def _expression(cron: str) -> str:
    spec = cron.strip()
    expression = CRON_ALIASES.get(spec.lower(), spec)
    if expression.startswith("@"):
        raise InvalidSchedule(f"unknown cron alias {spec!r} (known: {', '.join(CRON_ALIASES)})")
    if len(expression.split()) != 5:
        raise InvalidSchedule(
            f"cron spec {spec!r} must have 5 fields (minute hour day-of-month month day-of-week) "
            f"or be one of {', '.join(CRON_ALIASES)}"
        )
    return expression


def next_run_after(cron: str, moment: datetime) -> datetime:
    """The first time strictly after ``moment`` that ``cron`` names (UTC, whole minutes).

    Raises :class:`InvalidSchedule` naming the problem for a bad spec.
    """
    expression = _expression(cron)
    try:
        return next(CronSim(expression, moment.astimezone(UTC).replace(second=0, microsecond=0)))
    except CronSimError as error:
        raise InvalidSchedule(f"cron spec {cron.strip()!r}: {error}") from None
    except StopIteration:
        raise InvalidSchedule(f"cron spec {cron.strip()!r} never fires") from None


def validate_schedule(name: str, cron: str, source_kind: str, source: str) -> None:
    """Raise :class:`InvalidSchedule` unless the fields make a schedule."""
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidSchedule(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    if len(cron) > MAX_CRON_LENGTH:
        raise InvalidSchedule(f"cron spec must be at most {MAX_CRON_LENGTH} characters")
    if source_kind not in SOURCE_KINDS:
        raise InvalidSchedule(f"source_kind must be one of {', '.join(SOURCE_KINDS)}")
    if not source.strip() or len(source) > MAX_SOURCE_LENGTH:
        raise InvalidSchedule(f"source must be 1 to {MAX_SOURCE_LENGTH} characters")
    next_run_after(cron, now())


class ScheduleLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_schedule(
        self, client_id: str, name: str, cron: str, source_kind: str, source: str
    ) -> ScheduleRecord:
        """Store an enabled schedule whose first run is the next time ``cron`` names."""
        validate_schedule(name, cron, source_kind, source)
        moment = now()
        values = {
            "id": str(uuid.uuid4()),
            "client_id": client_id,
            "name": name.strip(),
            "cron": cron.strip(),
            "source_kind": source_kind,
            "source": source,
            "enabled": True,
            "created_at": moment,
            "next_run_at": next_run_after(cron, moment),
            "last_run_at": None,
            "last_batch_id": None,
        }
        with write_transaction(self.engine) as connection:
            return _schedule(connection.execute(insert(schedules).returning(*schedules.c), values).one())

    def get_schedule(self, schedule_id: str, client_id: str | None = None) -> ScheduleRecord | None:
        """The schedule; ``None`` if unknown or, when ``client_id`` is given, someone else's."""
        query = select(schedules).where(schedules.c.id == schedule_id)
        if client_id is not None:
            query = query.where(schedules.c.client_id == client_id)
        with read_transaction(self.engine) as connection:
            row = connection.execute(query).first()
        return _schedule(row) if row else None

    def list_schedules(self, client_id: str | None = None) -> list[ScheduleRecord]:
        """The client's schedules (every schedule without ``client_id``), oldest first."""
        query = select(schedules).order_by(schedules.c.created_at, schedules.c.id)
        if client_id is not None:
            query = query.where(schedules.c.client_id == client_id)
        with read_transaction(self.engine) as connection:
            return [_schedule(row) for row in connection.execute(query)]

    def delete_schedule(self, schedule_id: str, client_id: str) -> bool:
        with write_transaction(self.engine) as connection:
            return bool(
                connection.execute(
                    delete(schedules).where(schedules.c.id == schedule_id, schedules.c.client_id == client_id)
                ).rowcount
            )

    def set_enabled(self, schedule_id: str, enabled: bool) -> bool:
        """Disable (or enable again) a schedule; a re-enabled one next runs at its next slot from now."""
        values: dict[str, object] = {"enabled": enabled}
        if enabled:
            schedule = self.get_schedule(schedule_id)
            if schedule is None:
                return False
            values["next_run_at"] = next_run_after(schedule.cron, now())
        with write_transaction(self.engine) as connection:
            return bool(
                connection.execute(update(schedules).where(schedules.c.id == schedule_id).values(**values)).rowcount
            )

    def disable_schedule(self, schedule_id: str) -> bool:
        return self.set_enabled(schedule_id, False)

    def due_schedules(self, moment: datetime, limit: int = 100) -> list[ScheduleRecord]:
        """Enabled schedules whose next run is at or before ``moment``, most overdue first."""
        query = (
            select(schedules)
            .where(schedules.c.enabled.is_(True), schedules.c.next_run_at <= moment)
            .order_by(schedules.c.next_run_at, schedules.c.id)
            .limit(limit)
        )
        with read_transaction(self.engine) as connection:
            return [_schedule(row) for row in connection.execute(query)]

    def claim_run(self, schedule_id: str, expected_next_run_at: datetime, new_next_run_at: datetime) -> bool:
        """Win the run due at ``expected_next_run_at``: move the schedule on to
        ``new_next_run_at`` if nobody else has; True for the one winner."""
        with write_transaction(self.engine) as connection:
            return bool(
                connection.execute(
                    update(schedules)
                    .where(
                        schedules.c.id == schedule_id,
                        schedules.c.enabled.is_(True),
                        schedules.c.next_run_at == expected_next_run_at,
                    )
                    .values(next_run_at=new_next_run_at, last_run_at=now())
                ).rowcount
            )

    def record_run(self, schedule_id: str, batch_id: str) -> None:
        """Remember the batch a run created."""
        with write_transaction(self.engine) as connection:
            connection.execute(update(schedules).where(schedules.c.id == schedule_id).values(last_batch_id=batch_id))
