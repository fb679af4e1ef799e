"""A base layer found in the shared base layer cache stays the build's to push even when
another build evicts it from the cache before the push opens it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from core.build.layers import Layer, LayerSpool
from core.build.outputs import local_blob
from core.cache.base import BaseLayerCache
from core.image.manifest import Descriptor
from core.image.reference import parse_reference
from core.registry import BlobSource
from tests.fixtures.registry import RegistryServer, make_client

GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _cached_layer(cache: BaseLayerCache, data: bytes) -> Layer:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    writer = cache.writer(digest, len(data))
    assert writer is not None
    writer.write(data)
    writer.commit()
    assert cache.has(digest, len(data))
    return Layer(Descriptor(GZIP_LAYER, digest, len(data)), diff_id=digest)


def test_push_of_a_base_layer_evicted_after_it_was_found(tmp_path: Path,
                                                         registry: RegistryServer) -> None:
    cache = BaseLayerCache(tmp_path / "base-cache", 1 << 20)
    data = os.urandom(300_000)
    layer = _cached_layer(cache, data)
    spool = LayerSpool(tmp_path / "layers", None, base_cache=cache)
    spool.directory.mkdir()

    found = local_blob(layer, spool)
    assert found is not None
    BaseLayerCache(cache.root, 0).evict()  # another build, short of room, empties the cache
    assert not cache.has(layer.digest, layer.size)

    repository = parse_reference(f"{registry.host}/evicted/base:x").context()
    with make_client(registry.host) as client:
        client.push_blob(repository, BlobSource.from_path(found, digest=layer.digest))
        assert client.blob_exists(repository, layer.digest)
    assert found.read_bytes() == data  # the build's own link, inside its spool
    assert found.parent == spool.directory


def test_a_blob_already_in_the_spool_is_used_as_it_is(tmp_path: Path) -> None:
    cache = BaseLayerCache(tmp_path / "base-cache", 1 << 20)
    layer = _cached_layer(cache, b"layer bytes")
    spool = LayerSpool(tmp_path / "layers", None, base_cache=cache)
    spool.directory.mkdir()
    spool.blob_path(layer.digest).write_bytes(b"layer bytes")
    assert local_blob(layer, spool) == spool.blob_path(layer.digest)
    assert local_blob(Layer(Descriptor(GZIP_LAYER, "sha256:" + "0" * 64, 5), diff_id=""),
                      spool) is None
