"""The stores builds share, hammered by several processes at once: the base layer cache
(writers of the same and of different blobs, readers, eviction under a tight budget) and an
OCI image layout used as a layer cache (index.json rewritten by every writer)."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import random
from pathlib import Path

import pytest

from core.cache.base import BaseLayerCache
from core.errors import DigestMismatchError
from core.image import mediatypes as mt
from core.image.manifest import Descriptor, Manifest, descriptor_for
from core.layout.blobs import Blob
from core.layout.oci import REF_NAME, OciLayout, write_oci_image

WORKERS = 6
BLOB_SIZE = 256 << 10


def _blob(seed: int) -> tuple[bytes, str]:
    data = random.Random(seed).randbytes(BLOB_SIZE)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def _use_base_cache(root: str, seed: int, rounds: int) -> list[str]:
    """Read or fetch-and-keep random blobs; return what went wrong (warnings included)."""
    warnings = _Warnings()
    logging.getLogger("core.cache.base").addHandler(warnings)
    cache = BaseLayerCache(Path(root), 3 * BLOB_SIZE)
    rng = random.Random(seed)
    problems: list[str] = []
    for _ in range(rounds):
        data, digest = _blob(rng.randrange(6))
        try:
            reader = cache.open(digest, len(data))
            if reader is not None:
                with reader:
                    if reader.read() != data:
                        problems.append(f"{digest}: wrong bytes read")
                continue
            writer = cache.writer(digest, len(data))
            if writer is not None:
                for start in range(0, len(data), 32 << 10):
                    writer.write(data[start:start + (32 << 10)])
                writer.commit()
            cache.size()
        except Exception as error:  # every failure is a finding here
            problems.append(f"{type(error).__name__}: {error}")
    return problems + warnings.seen


def test_base_cache_shared_by_processes(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        outcomes = pool.starmap(_use_base_cache,
                                [(str(tmp_path), seed, 60) for seed in range(WORKERS)])
    assert [p for problems in outcomes for p in problems] == []
    names = [p.name for p in (tmp_path / "blobs" / "sha256").iterdir()]
    assert [n for n in names if n.startswith(".")] == []  # no partial blob left behind
    for name in names:  # every kept blob is whole
        data = (tmp_path / "blobs" / "sha256" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == name
    # each writer makes room before it writes: at most one blob per writer over the budget
    assert BaseLayerCache(tmp_path, 0).size() <= (3 + WORKERS) * BLOB_SIZE


def _cache_image(worker: int, number: int) -> tuple[bytes, bytes, bytes, Manifest]:
    layer = f"layer {worker}/{number}\n".encode() * 100
    config = f'{{"architecture":"amd64","os":"linux","n":"{worker}/{number}"}}'.encode()
    manifest = Manifest(mt.OCI_MANIFEST, descriptor_for(config, mt.OCI_CONFIG),
                        (descriptor_for(layer, mt.OCI_LAYER_GZIP),))
    return layer, config, manifest.to_json(), manifest


def _write_layout(root: str, worker: int, count: int) -> list[str]:
    """Add `count` images of our own and rewrite one name every worker shares."""
    names = []
    for number in range(count):
        layer, config, manifest_bytes, manifest = _cache_image(worker, number)
        for name in (f"w{worker}-{number}", "shared"):
            write_oci_image(Path(root), manifest=manifest_bytes, config=config,
                            layers=[Blob(manifest.layers[0], layer)], ref_name=name)
        names.append(f"w{worker}-{number}")
        index = OciLayout(Path(root)).read_index()  # a reader never sees a partial index
        assert any((d.annotations or {}).get(REF_NAME) == names[-1] for d in index.manifests)
    return names


def test_oci_layout_index_shared_by_processes(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        written = pool.starmap(_write_layout, [(str(root), w, 15) for w in range(WORKERS)])
    layout = OciLayout(root)
    entries: list[Descriptor] = list(layout.read_index().manifests)
    names = [str((d.annotations or {}).get(REF_NAME)) for d in entries]
    assert sorted(n for n in names if n != "shared") == sorted(n for w in written for n in w)
    assert names.count("shared") == 1  # replaced, never duplicated
    for descriptor in entries:  # every name leads to a whole image
        layout.read_blob(descriptor)
    leftovers = [p.name for p in root.rglob(".*")]
    assert leftovers == []


def test_a_corrupt_read_keeps_the_good_copy_written_since(tmp_path: Path) -> None:
    cache = BaseLayerCache(tmp_path, 4 * BLOB_SIZE)
    data, digest = _blob(7)
    cache.blobs.mkdir(parents=True)
    cache.path(digest).write_bytes(b"x" * len(data))  # a corrupt copy
    reader = cache.open(digest, len(data))
    assert reader is not None
    cache.path(digest).unlink()  # another build noticed first and fetched it again
    writer = cache.writer(digest, len(data))
    assert writer is not None
    writer.write(data)
    writer.commit()
    with pytest.raises(DigestMismatchError), reader:
        reader.read()
    assert cache.has(digest, len(data))  # the good copy stays


def test_a_fetch_whose_part_file_was_taken_still_ends(tmp_path: Path) -> None:
    cache = BaseLayerCache(tmp_path, 4 * BLOB_SIZE)
    data, digest = _blob(8)
    writer = cache.writer(digest, len(data))
    assert writer is not None
    writer.write(data)
    for part in cache.blobs.glob(".part-*"):  # another build's evict() took it for a dead one
        part.unlink()
    writer.commit()  # the fetch it rides on goes on; the blob is just not kept
    assert not cache.has(digest, len(data))
