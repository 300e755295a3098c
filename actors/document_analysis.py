"""Analysis of one uploaded document: what it is (by content), its text, counts and chunks.

Pure functions over bytes: no I/O, so they are tested directly and reused by
every pipeline that needs a document's text.  The client's filename is only a
hint (markdown vs text) and a claim that is checked (a ``.json`` must parse).
Binary formats (PDF, DOCX) are recognised by signature and read by
:mod:`actors.document_formats`; everything else is decoded as text first.
XML is parsed with defusedxml: entity declarations (billion laughs, external
entities) are refused, never expanded.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import charset_normalizer
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from actors.document_formats import UnsupportedDocument, read_binary
from conveyor.content_types import DOCX_TYPE, PDF_TYPE, binary_type

CSV_SAMPLE_CHARACTERS = 64 * 1024
_MARKDOWN = re.compile(r"^(#{1,6} \S|```|\s*[-*+] \S|\s*\d+\. \S)|\[[^\]]+\]\([^)]+\)", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6} \S", re.MULTILINE)
_HTML_START = re.compile(r"^\s*(<!doctype html|<html[\s>])", re.IGNORECASE)
_HTML_TAG = re.compile(r"<(html|head|body)[\s>]", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[\s?]")
_HTML_ROOTS = {"html", "head", "body"}
_CLAIMED_KINDS = {".json": "json", ".csv": "csv", ".tsv": "tsv", ".html": "html", ".htm": "html", ".xml": "xml"}
MEDIA_TYPES = {
    "text": "text/plain",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
    "html": "text/html",
    "xml": "application/xml",
    "pdf": PDF_TYPE,
    "docx": DOCX_TYPE,
}
LANGUAGE_SAMPLE_CHARACTERS = 5000
_LANGUAGE_MIN_HITS = 5  # fewer common words than this is too little evidence
_LANGUAGE_MIN_SHARE = 0.15  # running text has a far higher share of them; names and numbers do not
_LANGUAGE_MARGIN = 1.3  # how far the best language must lead the next (they share words)
_WORD = re.compile(r"[^\W\d_]+")
_STOP_WORDS = {
    "en": "the and of to is in that it with for was are this be on not have which you from",
    "de": "der die und das ist nicht mit ein eine den dem sich auf für auch von zu es im wird",
    "fr": "le la les et est des une un du pour dans que qui pas sur au avec ce sont il de",
    "es": "el la los las y es en del que por una un con para se no su al lo como de",
    "it": "il la di che e è per un una del della non sono con gli le nel si da lo",
    "nl": "de het een en van is dat niet op te zijn met voor die er ook aan wordt bij hij",
    "pt": "o a os as de do da e que não em um uma para com é dos das no na",
}
_STOP_WORD_SETS = {language: frozenset(words.split()) for language, words in _STOP_WORDS.items()}


@dataclass(frozen=True)
class ChunkingPolicy:
    size: int = 2000
    overlap: int = 200

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"chunk size must be positive, not {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"chunk overlap must be at least 0 and below the size {self.size}, not {self.overlap}")


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int


@dataclass(frozen=True)
class DocumentAnalysis:
    kind: str
    media_type: str
    encoding: str
    sha256: str
    size_bytes: int
    text: str
    line_count: int
    word_count: int
    character_count: int
    chunks: tuple[Chunk, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Everything but the text, JSON-serialisable."""
        summary = asdict(self)
        del summary["text"]
        summary["chunks"] = list(summary["chunks"])
        return summary


def decode_text(content: bytes) -> tuple[str, str]:
    """(text, encoding) of content that is text; UnsupportedDocument otherwise."""
    mime = binary_type(content)
    if mime is not None:
        raise UnsupportedDocument(f"unsupported content: {mime}")
    if content.startswith(codecs.BOM_UTF8):
        return content[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
    if b"\x00" not in content:
        try:
            return content.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    match = charset_normalizer.from_bytes(content).best()
    if match is None or (b"\x00" in content and not match.encoding.startswith("utf_16")):
        raise UnsupportedDocument("unsupported content: binary data")
    return str(match), match.encoding.replace("_", "-")


def parse_table(text: str) -> tuple[str, list[list[str]]] | None:
    """(delimiter, rows) if ``text`` is a consistent table of 2+ columns and 2+ rows."""
    try:
        dialect = csv.Sniffer().sniff(text[:CSV_SAMPLE_CHARACTERS], delimiters=",;\t|")
        rows = [row for row in csv.reader(io.StringIO(text), dialect) if row]
    except csv.Error:
        return None
    widths = {len(row) for row in rows}
    if len(rows) < 2 or len(widths) != 1 or widths.pop() < 2:
        return None
    return dialect.delimiter, rows


def _parse_json(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        raise ValueError("not a JSON object or array")
    return json.loads(text)


def _claimed_kind(filename: str) -> str | None:
    lowered = filename.lower()
    return next((kind for suffix, kind in _CLAIMED_KINDS.items() if lowered.endswith(suffix)), None)


def _parse_xml(text: str) -> Element | None:
    """The root of XML ``text`` unless that is an HTML page; ParseError if it is not XML."""
    try:
        root = parse_xml(text)
    except DefusedXmlException as error:
        raise UnsupportedDocument(f"XML entity declarations are refused, not expanded: {error}") from error
    return None if _local_name(root.tag) in _HTML_ROOTS else root


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _detect(text: str, filename: str) -> tuple[str, Any]:
    """(kind, parsed form) by content; the name's claim is checked, not trusted."""
    try:
        return "json", _parse_json(text)
    except ValueError as error:
        json_error = error
    if _HTML_START.match(text):
        return "html", None
    xml_error: ParseError | None = None
    if text.lstrip().startswith("<"):
        try:
            root = _parse_xml(text)
        except ParseError as error:
            xml_error = error
        else:
            if root is not None:
                return "xml", root
    if xml_error is not None and _XML_DECLARATION.match(text):
        raise UnsupportedDocument(f"{filename} declares itself XML but does not parse: {xml_error}")
    if _HTML_TAG.search(text[:2048]):
        return "html", None
    table = parse_table(text)
    if table is not None:
        return ("tsv" if table[0] == "\t" else "csv"), table
    claimed = _claimed_kind(filename)
    if claimed == "json":
        raise UnsupportedDocument(f"{filename} claims to be JSON but does not parse: {json_error}")
    if claimed in ("csv", "tsv"):
        raise UnsupportedDocument(
            f"{filename} claims to be {claimed.upper()} but is not a table of at least two rows "
            "with the same number of columns"
        )
    if claimed == "html":
        raise UnsupportedDocument(f"{filename} claims to be HTML but has no <html> or <body>")
    if claimed == "xml":
        raise UnsupportedDocument(f"{filename} claims to be XML but does not parse: {xml_error or 'no root element'}")
    if _MARKDOWN.search(text) or filename.lower().endswith((".md", ".markdown")):
        return "markdown", None
    return "text", None


def _json_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _json_strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _json_strings(item)]
    return []


class _HtmlText(HTMLParser):
    """Visible text of an HTML page: no script or style, block elements on new lines."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "title", "section", "article"}
    HIDDEN = {"script", "style"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[list[str]] = [[]]
        self.title: str | None = None
        self.links = 0
        self._hidden_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden_depth += 1
        if tag in self.BLOCKS:
            self.lines.append([])
        if tag == "title":
            self._in_title = True
        if tag == "a" and any(name == "href" for name, _ in attrs):
            self.links += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1
        if tag in self.BLOCKS:
            self.lines.append([])
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        if self._in_title:
            self.title = ((self.title or "") + data).strip() or None
        self.lines[-1].extend(data.split())

    def text(self) -> str:
        return "\n".join(" ".join(words) for words in self.lines if words)


def _extract(kind: str, text: str, parsed: Any) -> tuple[str, dict[str, Any]]:
    """(plain text, kind-specific metadata)."""
    if kind == "json":
        top_level = "object" if isinstance(parsed, dict) else "array"
        size_key = "keys" if top_level == "object" else "items"
        return "\n".join(_json_strings(parsed)), {"top_level": top_level, size_key: len(parsed)}
    if kind in ("csv", "tsv"):
        delimiter, rows = parsed
        metadata = {"delimiter": delimiter, "columns": rows[0], "column_count": len(rows[0]), "row_count": len(rows) - 1}
        return "\n".join(" ".join(row) for row in rows), metadata
    if kind == "xml":
        namespace = parsed.tag[1:].partition("}")[0] if parsed.tag.startswith("{") else None
        metadata = {"root": _local_name(parsed.tag), "namespace": namespace, "elements": sum(1 for _ in parsed.iter())}
        return " ".join(" ".join(parsed.itertext()).split()), metadata
    if kind == "html":
        page = _HtmlText()
        page.feed(text)
        page.close()
        return page.text(), {"title": page.title, "links": page.links}
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    if kind == "markdown":
        return normalised, {"headings": len(_HEADING.findall(normalised))}
    return normalised, {}


def chunk_text(text: str, policy: ChunkingPolicy) -> tuple[Chunk, ...]:
    """Windows of at most ``policy.size`` characters covering ``text``, each
    starting ``policy.overlap`` characters before the previous one ended, cut
    at whitespace when there is some in the window's second half."""
    if len(text) <= policy.size:
        return (Chunk(index=0, start=0, end=len(text)),)
    chunks: list[Chunk] = []
    start = 0
    while True:
        end = min(start + policy.size, len(text))
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            if cut > start + policy.size // 2:
                end = cut
        chunks.append(Chunk(index=len(chunks), start=start, end=end))
        if end == len(text):
            return tuple(chunks)
        start = max(end - policy.overlap, start + 1)


def guess_language(text: str) -> str | None:
    """Which of en/de/fr/es/it/nl/pt the start of ``text`` is written in, judged
    by how many of its words are that language's commonest; None when unsure."""
    counts = Counter(_WORD.findall(text[:LANGUAGE_SAMPLE_CHARACTERS].lower()))
    scores = sorted(
        ((sum(counts[word] for word in words), language) for language, words in _STOP_WORD_SETS.items()), reverse=True
    )
    (best, language), (runner_up, _) = scores[0], scores[1]
    if best < max(_LANGUAGE_MIN_HITS, _LANGUAGE_MIN_SHARE * counts.total()) or best < _LANGUAGE_MARGIN * runner_up:
        return None
    return language


def _read_text(content: bytes, filename: str) -> tuple[str, str, str, dict[str, Any]]:
    """(kind, encoding, text, metadata) of a document that is text."""
    decoded, encoding = decode_text(content)
    if not decoded.strip():
        raise UnsupportedDocument("empty document")
    kind, parsed = _detect(decoded, filename)
    text, metadata = _extract(kind, decoded, parsed)
    return kind, encoding, text, metadata


def analyse_document(content: bytes, filename: str, chunking: ChunkingPolicy) -> DocumentAnalysis:
    if not content.strip():
        raise UnsupportedDocument("empty document")
    binary = read_binary(content)
    if binary is not None:
        kind, text, metadata = binary
        encoding = "binary"
    else:
        kind, encoding, text, metadata = _read_text(content, filename)
    return DocumentAnalysis(
        kind=kind,
        media_type=MEDIA_TYPES[kind],
        encoding=encoding,
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        text=text,
        line_count=len(text.splitlines()),
        word_count=len(text.split()),
        character_count=len(text),
        chunks=chunk_text(text, chunking),
        metadata={**metadata, "language": guess_language(text)},
    )
