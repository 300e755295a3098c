"""What the document pipeline computes for every chunk of a document's text,
and how the results of a fanned-out document's parts come back together."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

KEYWORDS_PER_CHUNK = 5
KEYWORDS_PER_DOCUMENT = 10
_WORD = re.compile(r"[^\W\d_]{3,}")
# Words too common to say what a chunk is about (English; other languages' short words are cut by length).
_COMMON = frozenset(
    "the and for are but not you all any can had her was one our out day get has him his how man new now old see "
    "two way who boy did its let put say she too use that with have this will your from they know want been good "
    "much some time very when come here just like long make many more only over such take than them well were what "
    "there their which would about could other these into also each then were where after before because should".split()
)


def analyse_chunk(index: int, start: int, end: int, text: str) -> dict[str, Any]:
    """Word count and the most frequent non-trivial words of ``text[start:end]``."""
    words = [word.lower() for word in _WORD.findall(text[start:end])]
    counts = Counter(word for word in words if word not in _COMMON)
    return {
        "index": index,
        "start": start,
        "end": end,
        "words": len(text[start:end].split()),
        "keywords": [word for word, _ in counts.most_common(KEYWORDS_PER_CHUNK)],
        "keyword_counts": dict(counts.most_common(KEYWORDS_PER_CHUNK)),
    }


def document_keywords(chunks: list[dict[str, Any]]) -> list[str]:
    totals: Counter[str] = Counter()
    for chunk in chunks:
        totals.update(chunk["keyword_counts"])
    return [word for word, _ in totals.most_common(KEYWORDS_PER_DOCUMENT)]


def aggregate_parts(document: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The result of a fanned-out document: its analysis plus every part's chunks, in order."""
    chunks = [chunk for part in parts for chunk in part["chunks"]]
    summary = {key: value for key, value in document.items() if key != "part_chunks"}
    return {**summary, "chunks": chunks, "keywords": document_keywords(chunks), "parts": len(parts)}
