"""The scheduler: ``python -m actors.scheduler [-v]`` (settings from ``CONVEYOR_*``).

periodiq's scheduler over the worker's broker (``actors.worker``, which
declares the periodic actors of :mod:`actors.periodic`).  It only sends
messages, at each job's cron times; workers consuming the ``maintenance``
queue run them.  Run one; a second one started by mistake sends every
message twice, and the ledger's tick claims make the second copy do nothing.
Equivalent to ``periodiq actors.worker``, with Dramatiq's log format.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import periodiq
from dramatiq.cli import LOGFORMAT

WORKER_MODULE = "actors.worker"


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=LOGFORMAT)
    arguments = periodiq.make_argument_parser().parse_args([WORKER_MODULE, *(sys.argv[1:] if argv is None else argv)])
    try:
        return periodiq.main(arguments)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
