"""The base layer cache: kept by digest within a budget, least recently used evicted first,
verified when read back."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from core.cache.base import BaseLayerCache
from core.errors import DigestMismatchError


def _blob(size: int, seed: int) -> tuple[bytes, str]:
    data = bytes([seed]) * size
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _keep(cache: BaseLayerCache, data: bytes, digest: str) -> None:
    writer = cache.writer(digest, len(data))
    assert writer is not None
    writer.write(data[:10])
    writer.write(data[10:])
    writer.commit()


def test_blobs_are_kept_and_read_back(tmp_path: Path) -> None:
    cache = BaseLayerCache(tmp_path, 1000)
    data, digest = _blob(300, 1)
    assert cache.open(digest, 300) is None
    _keep(cache, data, digest)
    reader = cache.open(digest, 300)
    assert reader is not None
    with reader:
        assert reader.read() == data
    assert cache.writer(digest, 300) is None  # already there


def test_least_recently_used_blobs_go_first(tmp_path: Path) -> None:
    cache = BaseLayerCache(tmp_path, 1000)
    blobs = [_blob(400, seed) for seed in (1, 2, 3)]
    for data, digest in blobs[:2]:
        _keep(cache, data, digest)
        time.sleep(0.01)
    old = time.time() - 100
    os.utime(cache.path(blobs[1][1]), (old, old))  # the second is now the least recent
    _keep(cache, *blobs[2])
    assert cache.has(blobs[0][1], 400) and cache.has(blobs[2][1], 400)
    assert not cache.has(blobs[1][1], 400)
    assert cache.writer(_blob(2000, 4)[1], 2000) is None  # larger than the budget


def test_a_corrupt_blob_is_removed_when_read(tmp_path: Path) -> None:
    cache = BaseLayerCache(tmp_path, 1000)
    data, digest = _blob(300, 5)
    _keep(cache, data, digest)
    cache.path(digest).write_bytes(b"y" * 300)
    reader = cache.open(digest, 300)
    assert reader is not None
    with pytest.raises(DigestMismatchError, match="corrupt"), reader:
        reader.read()
    assert not cache.path(digest).exists()


def test_a_wrong_fetch_is_not_kept(tmp_path: Path) -> None:
    cache = BaseLayerCache(tmp_path, 1000)
    _data, digest = _blob(300, 6)
    writer = cache.writer(digest, 300)
    assert writer is not None
    writer.write(b"z" * 300)
    writer.commit()
    assert not cache.has(digest, 300)
    assert [p.name for p in cache.blobs.iterdir()] == []
