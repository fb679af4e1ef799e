"""The layer cache: hits, misses after a change, TTL, registry and OCI layout stores."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from core.build.options import CacheOptions, OutputOptions
from core.build.pipeline import run_build
from tests.build.conftest import Recorder
from tests.cache.conftest import CachedBuilds, cached_steps
from tests.fixtures.images import skopeo_unpack
from tests.fixtures.proxy import Fault, fault_proxy
from tests.fixtures.registry import make_client

DOCKERFILE = """\
FROM {base}
ARG FLAVOUR=plain
COPY app /app
RUN cat /app/main.txt > /copied && echo "$FLAVOUR" > /flavour
COPY conf/ /etc/app/
RUN ls /etc/app > /listing
"""
FILES = {"app/main.txt": "main\n", "app/lib/x.txt": "x\n", "conf/a.ini": "a\n"}
#            FROM   ARG    COPY   RUN    COPY   RUN
ALL_MISS = [False, False, False, False, False, False]
ALL_HIT = [False, False, True, True, True, True]


def _start(cached: CachedBuilds) -> None:
    cached.write(FILES)
    first = cached.build(DOCKERFILE.format(base=cached.busybox))
    assert cached_steps(first) == ALL_MISS


def test_second_build_hits_every_step(cached: CachedBuilds) -> None:
    _start(cached)
    recorder = Recorder()
    second = cached.build(recorder=recorder)
    assert cached_steps(second) == ALL_HIT
    assert recorder.output() == []  # no RUN ran
    rootfs = skopeo_unpack(cached.registry.host, "cached/app:2", cached.tmp / "unpack")
    assert (rootfs / "copied").read_text() == "main\n"
    assert (rootfs / "flavour").read_text() == "plain\n"
    assert (rootfs / "listing").read_text() == "a.ini\n"


def test_changed_context_file_misses_from_its_copy_on(cached: CachedBuilds) -> None:
    _start(cached)
    cached.write({"conf/a.ini": "changed\n"})
    assert cached_steps(cached.build()) == [False, False, True, True, False, False]
    cached.write({"app/main.txt": "new main\n"})
    result = cached.build()
    assert cached_steps(result) == [False, False, False, False, False, False]
    rootfs = skopeo_unpack(cached.registry.host, "cached/app:3", cached.tmp / "unpack")
    assert (rootfs / "copied").read_text() == "new main\n"


def test_changed_build_arg_misses_the_run_that_sees_it(cached: CachedBuilds) -> None:
    _start(cached)
    result = cached.build(build_args={"FLAVOUR": "spicy"})
    assert cached_steps(result) == [False, False, True, False, False, False]
    rootfs = skopeo_unpack(cached.registry.host, "cached/app:2", cached.tmp / "unpack")
    assert (rootfs / "flavour").read_text() == "spicy\n"


def test_hits_feed_a_later_run_that_misses(cached: CachedBuilds) -> None:
    _start(cached)
    changed = DOCKERFILE.format(base=cached.busybox).replace("ls /etc/app", "ls /etc/app /app")
    result = cached.build(changed)
    assert cached_steps(result) == [False, False, True, True, True, False]
    rootfs = skopeo_unpack(cached.registry.host, "cached/app:2", cached.tmp / "unpack")
    assert (rootfs / "listing").read_text() == "/app:\nlib\nmain.txt\n\n/etc/app:\na.ini\n"
    assert (rootfs / "copied").read_text() == "main\n"  # the cached RUN's file is there too


def test_expired_entries_miss(cached: CachedBuilds) -> None:
    _start(cached)
    time.sleep(2.1)
    short = CacheOptions(enabled=True, repo=cached.cache_repo, ttl_seconds=2)
    assert cached_steps(cached.build(cache=short)) == ALL_MISS
    assert cached_steps(cached.build(cache=short)) == ALL_HIT  # written again


def test_oci_layout_cache(cached: CachedBuilds, tmp_path: Path) -> None:
    layout = tmp_path / "layout-cache"
    cache = CacheOptions(enabled=True, repo=f"oci:{layout}")
    cached.write(FILES)
    assert cached_steps(cached.build(DOCKERFILE.format(base=cached.busybox),
                                     cache=cache)) == ALL_MISS
    assert (layout / "index.json").exists()
    second = cached.build(cache=cache)
    assert cached_steps(second) == ALL_HIT
    rootfs = skopeo_unpack(cached.registry.host, "cached/app:2", cached.tmp / "unpack")
    assert (rootfs / "listing").read_text() == "a.ini\n"


def test_cache_write_failures_only_warn(cached: CachedBuilds) -> None:
    with fault_proxy(cached.registry.host) as proxy:
        proxy.add(Fault(method="PUT", path_contains="/cache/", status=400, times=10**6))
        client = make_client(cached.registry.host, proxy.host)
        cached.write(FILES)
        cached.write({"Dockerfile": DOCKERFILE.format(base=cached.busybox)})
        options_cache = CacheOptions(enabled=True, repo=f"{proxy.host}/cache/broken")
        from dataclasses import replace

        from core.build.options import BuildOptions, OutputOptions

        options = BuildOptions(context=str(cached.context), work_dir=cached.tmp / "w",
                               output=OutputOptions(destinations=(
                                   f"{cached.registry.host}/cached/warned:1",)),
                               cache=options_cache)
        try:
            result = run_build(replace(options), events=Recorder(), registry=client)
        finally:
            client.close()
    assert any("could not write the layer cache" in w for w in result.warnings)
    assert result.destinations


def _second_build_elsewhere(cached: CachedBuilds, cache: CacheOptions) -> list[bool]:
    """Build again to a repository that holds none of the first build's layers; check the
    image the build pushed there."""
    result = cached.build(cache=cache, output=OutputOptions(destinations=(
        f"{cached.registry.host}/cached/elsewhere-{cached.tmp.name.lower()}:1",)))
    rootfs = skopeo_unpack(cached.registry.host,
                           f"cached/elsewhere-{cached.tmp.name.lower()}:1",
                           cached.tmp / "unpack-elsewhere")
    assert (rootfs / "listing").read_text() == "a.ini\n"
    assert (rootfs / "copied").read_text() == "main\n"
    return cached_steps(result)


def test_registry_entry_whose_layer_blob_is_gone_misses(cached: CachedBuilds) -> None:
    cached.write(FILES)
    first = cached.build(DOCKERFILE.format(base=cached.busybox))
    gone = first.layers[-1].digest  # the last RUN's layer
    repository = cached.cache_repo.split("/", 1)[1]
    response = requests.delete(f"{cached.registry.url}/v2/{repository}/blobs/{gone}",
                               timeout=10)
    assert response.status_code == 202, response.text
    cache = CacheOptions(enabled=True, repo=cached.cache_repo)
    assert _second_build_elsewhere(cached, cache) == [False, False, True, True, True, False]


def test_layout_entry_whose_layer_blob_is_gone_misses(cached: CachedBuilds,
                                                      tmp_path: Path) -> None:
    layout = tmp_path / "layout-cache"
    cache = CacheOptions(enabled=True, repo=f"oci:{layout}")
    cached.write(FILES)
    first = cached.build(DOCKERFILE.format(base=cached.busybox), cache=cache)
    (layout / "blobs" / "sha256" / first.layers[-1].digest.split(":")[1]).unlink()
    assert _second_build_elsewhere(cached, cache) == [False, False, True, True, True, False]
    assert cached_steps(cached.build(cache=cache)) == ALL_HIT  # the miss wrote it again
