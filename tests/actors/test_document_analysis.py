from __future__ import annotations

import hashlib
import json

import pytest

from actors.document_analysis import ChunkingPolicy, UnsupportedDocument, analyse_document, chunk_text

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
    assert analysis.metadata == {"top_level": "object", "keys": 4}
    assert analyse_document(b"[1, 2, 3]", "a.json", POLICY).metadata == {"top_level": "array", "items": 3}


def test_csv_rows_and_metadata() -> None:
    analysis = analyse_document(b"city;population\nParis;2100000\nLyon;520000\n", "c.csv", POLICY)
    assert analysis.text == "city population\nParis 2100000\nLyon 520000"
    assert analysis.metadata == {"delimiter": ";", "columns": ["city", "population"], "column_count": 2, "row_count": 2}


def test_html_text_skips_scripts_and_styles() -> None:
    page = (
        b"<html><head><title>Quarterly</title><style>p{color:red}</style></head>"
        b"<body><h1>Results</h1><script>track()</script><p>Revenue <b>up</b> <a href='/x'>details</a></p></body></html>"
    )
    analysis = analyse_document(page, "p.html", POLICY)
    assert analysis.text == "Quarterly\nResults\nRevenue up details"
    assert analysis.metadata == {"title": "Quarterly", "links": 1}


def test_summary_is_json_without_the_text() -> None:
    summary = analyse_document(b"# H\n\nbody", "x.md", POLICY).summary()
    assert "text" not in summary
    assert summary["chunks"] == [{"index": 0, "start": 0, "end": 9}]
    assert summary["metadata"] == {"headings": 1}
    json.dumps(summary)


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
