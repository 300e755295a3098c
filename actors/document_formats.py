"""Text and metadata of the binary document formats the pipeline reads: PDF and DOCX.

Pure functions over bytes, like :mod:`actors.document_analysis`, which
dispatches here when the content has a binary signature.  A file that does
not open — corrupt, truncated, encrypted, or a ZIP that is not a Word
document — raises :class:`UnsupportedDocument`: permanent, a retry reads the
same bytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import docx
from docx.document import Document as WordDocument
from docx.opc.exceptions import OpcError
from docx.table import Table
from lxml.etree import LxmlError
from pypdf import PasswordType, PdfReader
from pypdf.errors import PyPdfError

from conveyor.content_types import DOCX_TYPE, PDF_TYPE, ZIP_TYPE, binary_type

MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # a DOCX inflating beyond this is a ZIP bomb, not a document
WORD_DOCUMENT_PART = "word/document.xml"

# What the parsers raise on malformed input.  They read untrusted bytes, and
# pypdf in particular surfaces damage as whatever error the broken structure
# triggers, so this list is wide; it stops short of MemoryError and OSError.
_UNREADABLE = (
    PyPdfError, OpcError, LxmlError, zipfile.BadZipFile, zlib.error, struct.error, EOFError,
    ValueError, LookupError, TypeError, AttributeError, AssertionError, NotImplementedError, RecursionError,
)

Extracted = tuple[str, dict[str, Any]]


class UnsupportedDocument(ValueError):
    """The document cannot be processed: not a supported type, empty, or not
    parsing as the type its name claims.  Permanent: a retry will not help.

    Defined here, the lower of the two modules; :mod:`actors.document_analysis`
    re-exports it, which is where callers import it from."""


def _open_pdf(content: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(content))
        opened = not reader.is_encrypted or reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except _UNREADABLE as error:
        raise UnsupportedDocument(f"unreadable PDF: {_reason(error)}") from error
    if not opened:
        raise UnsupportedDocument("encrypted PDF: it cannot be opened without a password")
    return reader


def read_pdf(content: bytes) -> Extracted:
    """Page texts separated by blank lines; page count, title and author."""
    reader = _open_pdf(content)
    try:
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info = reader.metadata
        title, author = (info.title, info.author) if info is not None else (None, None)
    except _UNREADABLE as error:
        raise UnsupportedDocument(f"unreadable PDF: {_reason(error)}") from error
    metadata = {"pages": len(pages), "title": _present(title), "author": _present(author)}
    return "\n\n".join(pages), metadata


def _table_lines(table: Table) -> list[str]:
    return [" ".join(cell.text for cell in row.cells) for row in table.rows]


def _word_document(content: bytes) -> WordDocument:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = archive.infolist()
    except _UNREADABLE as error:
        raise UnsupportedDocument(f"unreadable ZIP archive: {_reason(error)}") from error
    if WORD_DOCUMENT_PART not in {entry.filename for entry in entries}:
        raise UnsupportedDocument(
            f"unsupported content: a ZIP archive that is not a Word document (no {WORD_DOCUMENT_PART})"
        )
    if sum(entry.file_size for entry in entries) > MAX_UNPACKED_BYTES:
        raise UnsupportedDocument(f"Word document unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    try:
        return docx.Document(io.BytesIO(content))
    except _UNREADABLE as error:
        raise UnsupportedDocument(f"unreadable Word document: {_reason(error)}") from error


def read_docx(content: bytes) -> Extracted:
    """Paragraph and table-cell text in document order; paragraph and table
    counts, title and author."""
    document = _word_document(content)
    try:
        lines: list[str] = []
        for block in document.iter_inner_content():
            lines.extend(_table_lines(block) if isinstance(block, Table) else [block.text])
        properties = document.core_properties
        metadata = {
            "paragraphs": len(document.paragraphs),
            "tables": len(document.tables),
            "title": _present(properties.title),
            "author": _present(properties.author),
        }
    except _UNREADABLE as error:
        raise UnsupportedDocument(f"unreadable Word document: {_reason(error)}") from error
    return "\n".join(line for line in lines if line.strip()), metadata


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


def _present(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


_READERS: dict[str, tuple[str, Callable[[bytes], Extracted]]] = {
    PDF_TYPE: ("pdf", read_pdf),
    DOCX_TYPE: ("docx", read_docx),
    ZIP_TYPE: ("docx", read_docx),  # Word documents usually sniff as plain ZIP; read_docx checks
}


def read_binary(content: bytes) -> tuple[str, str, dict[str, Any]] | None:
    """(kind, text, metadata) of a supported binary document; ``None`` when the
    content has no binary signature (it may be text); UnsupportedDocument for
    any other binary format."""
    mime = binary_type(content)
    if mime is None:
        return None
    if mime not in _READERS:
        raise UnsupportedDocument(f"unsupported content: {mime}")
    kind, read = _READERS[mime]
    text, metadata = read(content)
    if not text.strip():
        raise UnsupportedDocument(f"the {kind} document has no text to extract")
    return kind, text, metadata
