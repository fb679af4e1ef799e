"""Lazy base images: COPY-only stages never download their base layers; base blobs are reused
at push (mounted, found by HEAD, or streamed registry to registry)."""

from __future__ import annotations

from pathlib import Path

from core.build.options import BuildOptions, OutputOptions
from core.build.pipeline import run_build
from tests.build.conftest import Recorder, write_context
from tests.fixtures.images import skopeo_inspect_raw, skopeo_unpack
from tests.fixtures.registry import RegistryServer, make_client
from tests.perf.conftest import ProxiedBuilds, leftovers


def _base_layers(proxied: ProxiedBuilds) -> list[str]:
    import json

    manifest = json.loads(skopeo_inspect_raw(proxied.registry.host, proxied.base.docker_gzip))
    return [layer["digest"] for layer in manifest["layers"]]


def test_copy_only_build_never_fetches_base_layers(proxied: ProxiedBuilds) -> None:
    layers = _base_layers(proxied)
    dockerfile = f"FROM {proxied.busybox}\nCOPY app /app\nCOPY conf/ /etc/app/\nENV A=1\n"
    files = {"app/main.py": "print('hi')\n", "app/lib/util.py": "x = 1\n",
             "conf/app.ini": "[app]\n"}
    result = proxied.build(dockerfile, files, cleanup=False)
    assert proxied.blob_gets(layers) == 0
    # the base layer is not uploaded again: found or mounted in the destination repository
    mounts = sum(proxied.proxy.count("POST", d.split(":")[1]) for d in layers)
    assert mounts == len(layers)
    assert proxied.proxy.count("PATCH") == 0
    assert leftovers(proxied.tmp / f"work{proxied.counter}") == []
    assert [layer.digest for layer in result.layers[:len(layers)]] == layers
    image = result.destinations[0].split("/", 1)[1]
    rootfs = skopeo_unpack(proxied.registry.host, image, proxied.tmp / "unpack")
    assert (rootfs / "app/lib/util.py").read_text() == "x = 1\n"
    assert (rootfs / "etc/app/app.ini").read_text() == "[app]\n"
    assert (rootfs / "etc/passwd").exists() and (rootfs / "bin/busybox").exists()
    assert oct((rootfs / "tmp").stat().st_mode & 0o7777) == "0o1777"  # the base's, kept


def test_copy_needing_the_tree_streams_headers_without_storing(proxied: ProxiedBuilds) -> None:
    layers = _base_layers(proxied)
    # `/tmp` exists in the base: a file destination without a slash must look at the tree
    dockerfile = f"FROM {proxied.busybox}\nCOPY --chown=nobody note /tmp\n"
    result = proxied.build(dockerfile, {"note": "n\n"}, cleanup=False)
    assert proxied.blob_gets(layers) == len(layers)  # headers streamed once
    assert leftovers(proxied.tmp / f"work{proxied.counter}") == []  # and never stored
    image = result.destinations[0].split("/", 1)[1]
    rootfs = skopeo_unpack(proxied.registry.host, image, proxied.tmp / "unpack")
    note = rootfs / "tmp" / "note"
    assert note.read_text() == "n\n" and note.stat().st_uid == 65534
    assert oct((rootfs / "tmp").stat().st_mode & 0o7777) == "0o1777"


def test_run_extracts_base_layers_as_streams(proxied: ProxiedBuilds) -> None:
    layers = _base_layers(proxied)
    dockerfile = f"FROM {proxied.busybox}\nCOPY x /x\nRUN cat /x > /y\n"
    result = proxied.build(dockerfile, {"x": "made\n"}, cleanup=False)
    assert proxied.blob_gets(layers) == len(layers)  # once: the tree is extracted at COPY
    assert leftovers(proxied.tmp / f"work{proxied.counter}") == []
    image = result.destinations[0].split("/", 1)[1]
    rootfs = skopeo_unpack(proxied.registry.host, image, proxied.tmp / "unpack")
    assert (rootfs / "y").read_text() == "made\n"


def test_base_layers_stream_between_registries(proxied: ProxiedBuilds, tmp_path: Path,
                                               fresh_registry: RegistryServer) -> None:
    layers = _base_layers(proxied)
    context = write_context(tmp_path / "ctx", {
        "Dockerfile": f"FROM {proxied.busybox}\nCOPY x /opt/\n", "x": "x"})
    client = proxied.client(fresh_registry.host)
    options = BuildOptions(context=str(context), work_dir=tmp_path / "work", cleanup=False,
                           output=OutputOptions(destinations=(
                               f"{fresh_registry.host}/far/app:1",)))
    try:
        run_build(options, events=Recorder(), registry=client)
    finally:
        client.close()
    assert proxied.blob_gets(layers) == len(layers)  # copied once, registry to registry
    assert leftovers(tmp_path / "work") == []  # without staging on disk
    rootfs = skopeo_unpack(fresh_registry.host, "far/app:1", tmp_path / "unpack")
    assert (rootfs / "opt/x").read_text() == "x" and (rootfs / "bin/busybox").exists()


def test_base_layer_cache_keeps_pulled_layers(proxied: ProxiedBuilds, tmp_path: Path) -> None:
    from core.build.options import CacheOptions

    layers = _base_layers(proxied)
    cache = CacheOptions(base_dir=tmp_path / "bases", base_budget=64 << 20)
    dockerfile = f"FROM {proxied.busybox}\nRUN echo one > /one\n"
    proxied.build(dockerfile, cache=cache)
    assert proxied.blob_gets(layers) == len(layers)
    kept = sorted(p.name for p in (tmp_path / "bases" / "blobs" / "sha256").iterdir())
    assert kept == sorted(d.split(":")[1] for d in layers)
    proxied.build(dockerfile.replace("one", "two"), cache=cache)
    assert proxied.blob_gets(layers) == len(layers)  # the second build read the cache


def test_copy_only_to_another_repository_of_the_registry(proxied: ProxiedBuilds) -> None:
    client = make_client(proxied.proxy.host)
    try:
        result = proxied.build(f"FROM {proxied.busybox}\nCOPY a/ /a/\n", {"a/f": "f"},
                               client=client)
    finally:
        client.close()
    assert proxied.proxy.count("GET", "/blobs/sha256") == 1  # the base config only
    assert len(result.layers) == 2
