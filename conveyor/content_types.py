"""Which uploads Conveyor accepts, judged by content, not by name.

Known binary formats are recognised from their leading bytes (``filetype``);
the gateway refuses the ones no pipeline reads before storing them, and the
document pipeline uses the same judgement.  Everything without a known binary
signature is treated as (possibly) text and examined by the worker.

PDF and Word (DOCX) documents are the accepted binary formats.  A PDF says so
in its first bytes.  A DOCX is a ZIP archive, and ``filetype`` only names it a
DOCX when a ``word/`` entry lies within what it is shown: in the 262 bytes the
gateway sniffs, Word, LibreOffice and python-docx files all show just the
first entry (``[Content_Types].xml``, compressed), so they look like
``application/zip``.  Reading further would mean buffering a whole upload
before judging it.  So the judgement from the head is "could be a Word
document": a ZIP whose first entry is an Office Open XML package part is let
through, any other ZIP is refused; the worker, which has the whole file,
confirms ``word/document.xml`` is there and otherwise fails the job as an
unsupported document.  The only non-DOCX files that pass the gateway this way
are other OOXML packages (XLSX, PPTX), which cost one refused job, not a leak.
"""

from __future__ import annotations

import filetype

SNIFF_BYTES = 262  # what filetype needs to recognise every format it knows
PDF_TYPE = "application/pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ZIP_TYPE = "application/zip"
ACCEPTED_BINARY_TYPES: frozenset[str] = frozenset({PDF_TYPE, DOCX_TYPE})
_OFFICE_PACKAGE_FIRST_ENTRIES = (b"[Content_Types].xml", b"_rels/", b"docProps/", b"word/")
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_ZIP_NAME_OFFSET = 30


def binary_type(head: bytes) -> str | None:
    """The MIME type of a known binary format starting ``head``, else ``None``."""
    kind = filetype.guess(head[:SNIFF_BYTES])
    return kind.mime if kind is not None else None


def may_be_docx(head: bytes) -> bool:
    """Whether ``head`` starts a ZIP archive whose first entry is an Office Open
    XML package part, as every Word document's does."""
    if not head.startswith(_ZIP_LOCAL_HEADER) or len(head) < _ZIP_NAME_OFFSET:
        return False
    name_length = int.from_bytes(head[26:28], "little")
    name = head[_ZIP_NAME_OFFSET : _ZIP_NAME_OFFSET + name_length]
    return name.startswith(_OFFICE_PACKAGE_FIRST_ENTRIES)


def refused_type(head: bytes) -> str | None:
    """The MIME type if ``head`` starts a binary format no pipeline accepts."""
    mime = binary_type(head)
    if mime is None or mime in ACCEPTED_BINARY_TYPES or (mime == ZIP_TYPE and may_be_docx(head)):
        return None
    return mime
