from __future__ import annotations

import hashlib
import json

import pytest

from actors.document_analysis import ChunkingPolicy, UnsupportedDocument, analyse_document, chunk_text, guess_language

POLICY = ChunkingPolicy(size=2000, overlap=200)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32)


@pytest.mark.parametrize(
    ("filename", "content", "kind"),
    [
        ("notes.txt", b"just some words here", "text"),
        ("notes.txt", b"name,value\nalpha,1\nbeta,2\n", "csv"),  # content wins over the name
        ("export", b"a\tb\n1\t2\n", "tsv"),
        ("readme", b"# Title\n\n- item\n", "markdown"),
        ("plain.md", b"no markup at all", "markdown"),  # the name decides between text and markdown
        ("data.bin", b'  {"a": 1}', "json"),
        ("page.txt", b"<!DOCTYPE html><html><body>x</body></html>", "html"),
        ("page.xml", b"<html><body><p>x</p></body></html>", "html"),  # well-formed XML, but a web page
        ("x.xhtml", b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>x</body></html>', "html"),
        ("feed", b'<?xml version="1.0"?><feed><entry>x</entry></feed>', "xml"),
        ("note.txt", b"<note><to>Ann</to><body>hi</body></note>", "xml"),  # a <body> element is not HTML here
        ("cmp.txt", b"a < b and <c> is not markup", "text"),
    ],
)
def test_kind_is_detected_by_content(filename: str, content: bytes, kind: str) -> None:
    assert analyse_document(content, filename, POLICY).kind == kind


@pytest.mark.parametrize(
    ("filename", "content", "reason"),
    [
        ("photo.txt", PNG, "unsupported content: image/png"),
        ("blob.txt", bytes(range(256)) * 8, "unsupported content: binary data"),
        ("empty.txt", b"", "empty document"),
        ("blank.txt", b" \n\t\n", "empty document"),
        ("broken.json", b'{"a": [1, 2', "broken.json claims to be JSON but does not parse"),
        ("ragged.csv", b"one column\nonly\n", "ragged.csv claims to be CSV"),
        ("page.html", b"hello there", "page.html claims to be HTML"),
        ("data.xml", b"<a><b></a>", "data.xml claims to be XML but does not parse: mismatched tag"),
        ("data.xml", b"plain words", "data.xml claims to be XML but does not parse: no root element"),
        ("data.txt", b'<?xml version="1.0"?><a>', "data.txt declares itself XML but does not parse"),
    ],
)
def test_unsupported_documents_are_rejected_with_the_reason(filename: str, content: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedDocument, match=reason):
        analyse_document(content, filename, POLICY)


def test_text_counts_hash_and_size_are_exact() -> None:
    content = b"one two three\r\nfour five\r\n\r\nsix"
    analysis = analyse_document(content, "t.txt", POLICY)
    assert analysis.text == "one two three\nfour five\n\nsix"
    assert (analysis.line_count, analysis.word_count, analysis.character_count) == (4, 6, 28)
    assert analysis.sha256 == hashlib.sha256(content).hexdigest()
    assert analysis.size_bytes == len(content)
    assert (analysis.media_type, analysis.encoding) == ("text/plain", "utf-8")


@pytest.mark.parametrize(
    ("content", "encoding", "text"),
    [
        ("héllo wörld".encode("utf-16"), "utf-16", "héllo wörld"),
        (b"\xef\xbb\xbfbom first", "utf-8-sig", "bom first"),
    ],
)
def test_encodings_are_detected(content: bytes, encoding: str, text: str) -> None:
    analysis = analyse_document(content, "t.txt", POLICY)
    assert (analysis.encoding, analysis.text) == (encoding, text)


def test_json_text_is_its_string_values_in_order() -> None:
    document = {"title": "Report", "tags": ["a", "b"], "count": 3, "nested": {"note": "deep"}}
    analysis = analyse_document(json.dumps(document).encode(), "d.json", POLICY)
    assert analysis.text == "Report\na\nb\ndeep"
    assert analysis.metadata == {"top_level": "object", "keys": 4, "language": None}
    array = analyse_document(b"[1, 2, 3]", "a.json", POLICY)
    assert array.metadata == {"top_level": "array", "items": 3, "language": None}


def test_csv_rows_and_metadata() -> None:
    analysis = analyse_document(b"city;population\nParis;2100000\nLyon;520000\n", "c.csv", POLICY)
    assert analysis.text == "city population\nParis 2100000\nLyon 520000"
    assert analysis.metadata == {
        "delimiter": ";", "columns": ["city", "population"], "column_count": 2, "row_count": 2, "language": None
    }


def test_html_text_skips_scripts_and_styles() -> None:
    page = (
        b"<html><head><title>Quarterly</title><style>p{color:red}</style></head>"
        b"<body><h1>Results</h1><script>track()</script><p>Revenue <b>up</b> <a href='/x'>details</a></p></body></html>"
    )
    analysis = analyse_document(page, "p.html", POLICY)
    assert analysis.text == "Quarterly\nResults\nRevenue up details"
    assert analysis.metadata == {"title": "Quarterly", "links": 1, "language": None}


def test_summary_is_json_without_the_text() -> None:
    summary = analyse_document(b"# H\n\nbody", "x.md", POLICY).summary()
    assert "text" not in summary
    assert summary["chunks"] == [{"index": 0, "start": 0, "end": 9}]
    assert summary["metadata"] == {"headings": 1, "language": None}
    json.dumps(summary)


def test_xml_text_is_its_normalised_text_content() -> None:
    content = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- exported -->
<catalog xmlns="urn:example:books">
  <book id="1"><title>Dune</title>
    <author>Frank   Herbert</author></book>
  <book id="2"><title>Emma</title><?render fancy?></book>tail text
</catalog>"""
    analysis = analyse_document(content, "books", POLICY)
    assert (analysis.kind, analysis.media_type) == ("xml", "application/xml")
    assert analysis.text == "Dune Frank Herbert Emma tail text"
    assert analysis.metadata == {"root": "catalog", "namespace": "urn:example:books", "elements": 6, "language": None}


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<lolz>&lol2;</lolz>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>',
        b'<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://example.invalid/x.dtd"> %remote;]><r/>',
    ],
    ids=["billion-laughs", "external-entity", "parameter-entity"],
)
def test_xml_entity_declarations_are_refused_not_expanded(content: bytes) -> None:
    with pytest.raises(UnsupportedDocument, match="XML entity declarations are refused"):
        analyse_document(content, "evil.txt", POLICY)


def test_language_hint_for_english_and_german_paragraphs() -> None:
    english = b"The board met on Monday and agreed that the plan is not ready. It will be reviewed with the team."
    german = (
        "Der Vorstand hat am Montag beschlossen, dass der Plan noch nicht fertig ist. "
        "Er wird mit dem Team und den Kunden besprochen."
    )
    assert analyse_document(english, "en.txt", POLICY).metadata == {"language": "en"}
    assert analyse_document(german.encode(), "de.txt", POLICY).metadata == {"language": "de"}


@pytest.mark.parametrize("text", ["", "just some words here", "2024 1997 3.14", "la de en"])
def test_language_hint_is_none_when_unsure(text: str) -> None:
    assert guess_language(text) is None


@pytest.mark.parametrize(("size", "overlap"), [(50, 10), (50, 49), (7, 0), (1, 0)])
def test_chunks_cover_the_text_within_size_and_overlap(size: int, overlap: int) -> None:
    text = " ".join(f"word{i}" for i in range(300))
    chunks = chunk_text(text, ChunkingPolicy(size=size, overlap=overlap))
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for previous, current in zip(chunks, chunks[1:]):
        assert current.end - current.start <= size
        assert previous.start < current.start <= previous.end  # progress, no gap
        assert previous.end - current.start <= overlap


def test_short_text_is_one_chunk() -> None:
    assert len(chunk_text("short", ChunkingPolicy(size=100, overlap=10))) == 1


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_invalid_chunking_policy_is_rejected(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        ChunkingPolicy(size=size, overlap=overlap)
