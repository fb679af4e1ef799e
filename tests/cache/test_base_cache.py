"""The base layer cache: kept by digest within a budget, least recently used evicted first,
verified when read back; turned on by `--base-cache DIR` (`--base-cache-budget SIZE`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from core.build.budget import free_bytes
from core.build.options import BuildOptions, CacheOptions
from core.build.pipeline import _base_cache
from core.cache.base import BaseLayerCache
from core.errors import DigestMismatchError, UsageError
from core.flags import BuildInvocation, add_build_flags, invocation_from_args
from tests.fixtures.images import BaseImages, skopeo_inspect_raw
from tests.fixtures.proxy import fault_proxy
from tests.fixtures.registry import RegistryServer

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


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


def _invoke(cwd: Path, *argv: str) -> BuildInvocation:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_build_flags(parser)
    return invocation_from_args(parser.parse_args(["--no-push", *argv]), environ={}, cwd=cwd,
                                clock=lambda: 0.0)


def test_base_cache_flags_fill_the_cache_options(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    cache = _invoke(tmp_path).options.cache
    assert (cache.base_dir, cache.base_budget) == (None, CacheOptions().base_budget)
    done = _invoke(tmp_path, "--base-cache", "bases", "--base-cache-budget", "300M")
    assert done.options.cache.base_dir == tmp_path / "bases"  # relative to the cwd
    assert done.options.cache.base_budget == 300 << 20 and done.warnings == ()
    alone = _invoke(tmp_path, "--base-cache-budget=1G")
    assert alone.options.cache.base_dir is None
    assert alone.warnings == ("--base-cache-budget has no effect without --base-cache",)


@pytest.mark.parametrize(("argv", "message"), [
    (("--base-cache", "bases", "--base-cache-budget", "lots"), "--base-cache-budget: invalid"),
    (("--base-cache", "bases", "--base-cache-budget", "0"), "--base-cache-budget: the size"),
    (("--base-cache", "Dockerfile"), "--base-cache Dockerfile: not a directory"),
])
def test_bad_base_cache_flags_are_refused(tmp_path: Path, argv: tuple[str, ...],
                                          message: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(UsageError, match=message):
        _invoke(tmp_path, *argv)


def test_the_cache_never_takes_more_than_a_quarter_of_the_space(tmp_path: Path) -> None:
    def cache(root: Path | None, budget: int) -> BaseLayerCache | None:
        options = BuildOptions(context=str(tmp_path),
                               cache=CacheOptions(base_dir=root, base_budget=budget))
        return _base_cache(options)

    assert cache(None, 1 << 30) is None and cache(tmp_path / "off", 0) is None
    small = cache(tmp_path / "small", 4096)
    assert small is not None and small.budget == 4096 and (tmp_path / "small").is_dir()
    data, digest = _blob(3000, 7)
    _keep(small, data, digest)
    huge = cache(tmp_path / "small", 1 << 62)
    assert huge is not None
    quarter = (free_bytes(tmp_path) + 3000) // 4  # others write too: allow some drift
    assert abs(huge.budget - quarter) < 64 << 20
    (tmp_path / "file").write_text("x")
    assert cache(tmp_path / "file", 4096) is None  # not usable: built without a cache


def _base_layers(base: BaseImages) -> list[str]:
    manifest = json.loads(skopeo_inspect_raw(base.host, base.docker_gzip))
    return [layer["digest"] for layer in manifest["layers"]]


def _cli(cwd: Path, *args: str | Path) -> None:
    done = subprocess.run([str(PYTHON), "-m", "core", "build", *map(str, args)], cwd=cwd,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
                               "HOME": str(cwd)},
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr


def test_cli_second_build_with_the_same_base_cache_pulls_no_base_blob(
        tmp_path: Path, registry: RegistryServer, base_images: BaseImages) -> None:
    layers = _base_layers(base_images)
    bases = tmp_path / "bases"
    with fault_proxy(registry.host) as proxy:
        def build(number: int, *cache: str | Path) -> int:
            """Blob GETs of the base layers after build `number` (a RUN needs the tree)."""
            (tmp_path / "Dockerfile").write_text(
                f"FROM {proxy.host}/{base_images.docker_gzip}\nRUN echo {number} > /n\n")
            _cli(tmp_path, "--no-push", "--insecure-registry", proxy.host, *cache)
            return sum(proxy.count("GET", f"/blobs/{digest}") for digest in layers)

        assert build(1, "--base-cache", bases, "--base-cache-budget", "64M") == len(layers)
        kept = sorted(p.name for p in (bases / "blobs" / "sha256").iterdir())
        assert kept == sorted(d.split(":")[1] for d in layers)
        assert build(2, "--base-cache", bases) == len(layers)  # read from the cache
        assert build(3) == 2 * len(layers)  # without the flag: pulled again
