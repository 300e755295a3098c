"""Which uploads Conveyor accepts, judged by content, not by name.

Known binary formats are recognised from their leading bytes (``filetype``);
the gateway refuses the ones no pipeline reads before storing them, and the
document pipeline uses the same judgement.  Everything without a known binary
signature is treated as (possibly) text and examined by the worker.
"""

from __future__ import annotations

import filetype

SNIFF_BYTES = 262  # what filetype needs to recognise every format it knows
ACCEPTED_BINARY_TYPES: frozenset[str] = frozenset()


def binary_type(head: bytes) -> str | None:
    """The MIME type of a known binary format starting ``head``, else ``None``."""
    kind = filetype.guess(head[:SNIFF_BYTES])
    return kind.mime if kind is not None else None


def refused_type(head: bytes) -> str | None:
    """The MIME type if ``head`` starts a binary format no pipeline accepts."""
    mime = binary_type(head)
    return mime if mime is not None and mime not in ACCEPTED_BINARY_TYPES else None
