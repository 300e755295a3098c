from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conveyor.blobs import BlobStore, BlobTooLarge


def test_blob_is_named_by_its_sha256_and_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == digest
    assert store.read(digest) == b"hello"
    assert store.path(digest) == tmp_path / digest[:2] / digest[2:4] / digest
    assert list(store.tmp_dir.iterdir()) == []


def test_streamed_write_is_invisible_until_committed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    writer = store.writer()
    writer.write(b"part one, ")
    digest = hashlib.sha256(b"part one, part two").hexdigest()
    assert not store.exists(digest)
    writer.write(b"part two")
    assert writer.commit() == digest
    assert store.exists(digest) and writer.size == 18


def test_oversized_blob_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    writer = store.writer(max_bytes=4)
    writer.write(b"1234")
    with pytest.raises(BlobTooLarge):
        writer.write(b"5")
    writer.discard()
    assert list(store.tmp_dir.iterdir()) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "ABC", "a" * 63, ""])
def test_only_digests_address_blobs(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        BlobStore(tmp_path).path(name)
