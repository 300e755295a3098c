"""The directory watcher: ``python -m watcher`` (settings from ``CONVEYOR_*``).

Needs the ledger (``CONVEYOR_DATABASE_URL``, migrated), the gateway's signing
secret (``CONVEYOR_JWT_SECRET``, to mint the submitting client's tokens) and
the gateway (``CONVEYOR_GATEWAY_URL``).  SIGTERM or SIGINT stops it after the
file it is submitting, if any; a submission cut short by a harder stop is
safe to repeat (see :mod:`watcher.service`).
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import SchemaOutOfDate, require_current
from conveyor.settings import Settings, SettingsError
from watcher.service import WatcherService

logger = logging.getLogger("watcher")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments:
        print(__doc__, file=sys.stderr)
        return 0 if arguments in (["-h"], ["--help"]) else 2
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"watcher: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = create_ledger_engine(settings.database_url)
    try:
        require_current(engine)
        service = WatcherService(settings, Ledger(engine))
    except (SchemaOutOfDate, SettingsError) as error:
        logger.error("%s", error)
        return 2

    def stop(signum: int, _frame: object) -> None:
        logger.info("%s received; stopping", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        service.run()
    except SettingsError as error:
        logger.error("%s", error)
        return 2
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
