from __future__ import annotations

import hashlib
import os
import time
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


def _age(store: BlobStore, digest: str, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(store.path(digest), (old, old))


def test_storing_existing_content_refreshes_its_mtime(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"shared")
    _age(store, digest, 7200)
    writer = store.writer()
    writer.write(b"shared")
    assert writer.commit() == digest and not writer.created
    assert time.time() - store.path(digest).stat().st_mtime < 60


def test_only_idle_blobs_are_deleted(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    idle, fresh = store.put(b"idle"), store.put(b"fresh")
    _age(store, idle, 7200)
    cutoff = time.time() - 3600
    assert store.delete_if_idle(idle, cutoff) and not store.exists(idle)
    assert not store.delete_if_idle(fresh, cutoff) and store.read(fresh) == b"fresh"
    assert not store.delete_if_idle(idle, cutoff)  # already gone
    assert list(store.tmp_dir.iterdir()) == []


def test_a_refresh_racing_with_deletion_keeps_the_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload of the same content refreshes the blob between retention's check and its rename."""
    store = BlobStore(tmp_path)
    digest = store.put(b"contended")
    _age(store, digest, 7200)
    real_replace = os.replace

    def refresh_then_replace(source: object, destination: object) -> None:
        if Path(str(source)) == store.path(digest):
            os.utime(source)  # the concurrent upload's refresh lands just before the rename
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", refresh_then_replace)
    assert not store.delete_if_idle(digest, time.time() - 3600)
    assert store.read(digest) == b"contended"
    assert list(store.tmp_dir.iterdir()) == []


def test_an_upload_that_finds_its_blob_taken_away_stores_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention renames the blob aside between the writer's existence check and its refresh."""
    store = BlobStore(tmp_path)
    digest = store.put(b"contended")
    real_utime = os.utime

    def deleted_first(path: object, *args: object) -> None:
        store.path(digest).unlink()  # retention wins the race
        real_utime(path, *args)

    monkeypatch.setattr(os, "utime", deleted_first)
    writer = store.writer()
    writer.write(b"contended")
    assert writer.commit() == digest and writer.created
    assert store.read(digest) == b"contended"
