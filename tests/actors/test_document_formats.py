"""PDF and DOCX reading, on real files built here, and which binary uploads are accepted."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from actors.document_analysis import ChunkingPolicy, analyse_document
from actors.document_formats import UnsupportedDocument, read_binary, read_docx, read_pdf
from conveyor.content_types import DOCX_TYPE, PDF_TYPE, SNIFF_BYTES, binary_type, may_be_docx, refused_type
from conveyor.sample_documents import make_pdf

POLICY = ChunkingPolicy(size=2000, overlap=200)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(300)


def encrypt_pdf(content: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(content)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None, **core: str) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table):
            for cell, value in zip(row.cells, values):
                cell.text = value
    for name, value in core.items():
        setattr(document.core_properties, name, value)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_pdf_text_is_its_pages_separated_by_blank_lines() -> None:
    text, metadata = read_pdf(make_pdf(["First page (intro)", "Second page"], {"Title": "Annual", "Author": "Ada"}))
    assert text == "First page (intro)\n\nSecond page"
    assert metadata == {"pages": 2, "title": "Annual", "author": "Ada"}


def test_pdf_without_information_has_no_title_or_author() -> None:
    assert read_pdf(make_pdf(["only"]))[1] == {"pages": 1, "title": None, "author": None}


def test_pdf_analysis_counts_and_hints_the_language() -> None:
    content = make_pdf(["The report is ready and it was sent to the board for the review of the plan."])
    analysis = analyse_document(content, "report.txt", POLICY)  # the name does not matter
    assert (analysis.kind, analysis.media_type, analysis.encoding) == ("pdf", "application/pdf", "binary")
    assert analysis.word_count == 17
    assert analysis.metadata == {"pages": 1, "title": None, "author": None, "language": "en"}


def test_an_encrypted_pdf_that_opens_without_a_password_is_read() -> None:
    assert read_pdf(encrypt_pdf(make_pdf(["open to all"]), user_password=""))[0] == "open to all"


def test_an_encrypted_pdf_needing_a_password_is_unsupported() -> None:
    with pytest.raises(UnsupportedDocument, match="encrypted PDF"):
        analyse_document(encrypt_pdf(make_pdf(["secret"]), user_password="s3cret"), "locked.pdf", POLICY)


@pytest.mark.parametrize(
    "content",
    [
        b"%PDF-1.4\n" + bytes(range(256)) * 4,  # signature, then garbage
        make_pdf(["cut short"])[:60],  # truncated
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    ],
)
def test_a_corrupt_pdf_is_unsupported(content: bytes) -> None:
    assert binary_type(content) == PDF_TYPE
    with pytest.raises(UnsupportedDocument, match="PDF"):
        analyse_document(content, "broken.pdf", POLICY)


def test_a_pdf_without_text_is_unsupported() -> None:
    with pytest.raises(UnsupportedDocument, match="no text to extract"):
        analyse_document(make_pdf([""]), "scan.pdf", POLICY)


def test_docx_text_is_paragraphs_and_table_cells_in_order() -> None:
    content = make_docx(
        ["Quarterly results", "", "Revenue grew."], [["city", "sales"], ["Paris", "12"]], title="Q3", author="Grace"
    )
    text, metadata = read_docx(content)
    assert text == "Quarterly results\nRevenue grew.\ncity sales\nParis 12"
    assert metadata == {"paragraphs": 3, "tables": 1, "title": "Q3", "author": "Grace"}


def test_docx_analysis_hints_german() -> None:
    paragraph = "Der Bericht ist fertig und wird mit dem Vorstand besprochen, auch wenn es nicht einfach ist."
    content = make_docx([paragraph])
    analysis = analyse_document(content, "bericht", POLICY)
    assert (analysis.kind, analysis.media_type) == ("docx", DOCX_TYPE)
    assert analysis.metadata["language"] == "de"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (make_zip({"notes.txt": b"hello"}), "unsupported content: a ZIP archive that is not a Word document"),
        (make_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}), "unsupported content"),
        (make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:doc"}), "unreadable Word document"),
        (make_docx(["whole"])[:400], "unreadable ZIP archive"),
    ],
)
def test_a_corrupt_docx_or_other_zip_is_unsupported(content: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedDocument, match=reason):
        analyse_document(content, "file.docx", POLICY)


def test_other_binary_formats_are_unsupported() -> None:
    with pytest.raises(UnsupportedDocument, match="unsupported content: image/png"):
        read_binary(PNG)
    assert read_binary(b"plain text") is None


def test_the_gateway_accepts_pdf_and_word_heads_and_refuses_other_binaries() -> None:
    word = make_docx(["x"])
    assert binary_type(word[:SNIFF_BYTES]) == "application/zip"  # the first entry is all the head shows
    assert may_be_docx(word[:SNIFF_BYTES])
    assert refused_type(make_pdf(["x"])[:SNIFF_BYTES]) is None
    assert refused_type(word[:SNIFF_BYTES]) is None
    assert refused_type(PNG) == "image/png"
    assert refused_type(make_zip({"notes.txt": b"hello"})) == "application/zip"
    assert refused_type(b"just text") is None
