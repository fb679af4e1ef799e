"""Streaming layers: compressed once, uploaded while written (chunked, bounded memory), spooled
only when kept or when the registry refuses chunks; other destinations get mounts."""

from __future__ import annotations

import json
import logging
import os
import tarfile
from pathlib import Path

import pytest

from core.build.options import OutputOptions
from core.image.reference import parse_reference
from tests.fixtures.images import skopeo_inspect_raw, skopeo_unpack
from tests.fixtures.proxy import Fault
from tests.fixtures.registry import RegistryServer
from tests.perf.conftest import ProxiedBuilds, leftovers

CHUNK = 256 * 1024


def _noise(size: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(size)


def _scratch_dockerfile() -> str:
    return "FROM scratch\nCOPY one /one/\nCOPY two /two/\n"


def _files() -> dict[str, str | bytes]:
    return {"one/a.bin": _noise(3 * CHUNK, 1), "two/b.bin": _noise(2 * CHUNK + 17, 2)}


def test_layers_stream_in_chunks_and_are_not_kept(proxied: ProxiedBuilds) -> None:
    proxied.client_options.update(chunk_size=CHUNK)
    result = proxied.build(_scratch_dockerfile(), _files(), cleanup=False)
    assert proxied.proxy.count("PATCH") >= 4  # both layers went in chunks
    assert leftovers(proxied.tmp / "work1") == []
    image = result.destinations[0].split("/", 1)[1]
    rootfs = skopeo_unpack(proxied.registry.host, image, proxied.tmp / "unpack")
    assert (rootfs / "one/a.bin").read_bytes() == _noise(3 * CHUNK, 1)
    assert (rootfs / "two/b.bin").read_bytes() == _noise(2 * CHUNK + 17, 2)


def test_small_layers_go_in_one_put(proxied: ProxiedBuilds,
                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="core.build.uploads"):
        result = proxied.build("FROM scratch\nCOPY x /x/\n", {"x/y": "y"})
    assert proxied.proxy.count("PATCH") == 0
    assert proxied.proxy.count("PUT", "digest=") == 2  # the layer, the config
    image = result.destinations[0].split("/", 1)[1]
    (layer,) = json.loads(skopeo_inspect_raw(proxied.registry.host, image))["layers"]
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("streamed ")]
    assert len(logged) == 1 and logged[0].startswith(f"streamed {layer['digest']} ")
    assert logged[0].endswith(f" ({layer['size']} bytes)")  # counted before the upload ended


def test_registry_refusing_chunks_gets_spooled_blobs(proxied: ProxiedBuilds) -> None:
    proxied.client_options.update(chunk_size=CHUNK)
    proxied.proxy.add(Fault(method="PATCH", status=405, times=10**6))
    result = proxied.build(_scratch_dockerfile(), _files(), cleanup=False)
    # refused at most once per layer (layers upload concurrently; later ones know)
    assert 1 <= proxied.proxy.count("PATCH") <= 2
    assert leftovers(proxied.tmp / "work1") == []  # the spool files are gone after the PUTs
    puts = [s for s in proxied.proxy.seen if s.method == "PUT" and "digest=" in s.path]
    assert sorted(int(s.headers.get("Content-Length", "0")) > CHUNK for s in puts) == [
        False, True, True]  # config; both layers whole
    image = result.destinations[0].split("/", 1)[1]
    rootfs = skopeo_unpack(proxied.registry.host, image, proxied.tmp / "unpack")
    assert (rootfs / "two/b.bin").read_bytes() == _noise(2 * CHUNK + 17, 2)


def test_other_destinations_get_mounts(proxied: ProxiedBuilds,
                                       fresh_registry: RegistryServer) -> None:
    proxied.client_options.update(chunk_size=CHUNK)
    destinations = (f"{proxied.host}/multi/a:1", f"{proxied.host}/multi/b:2",
                    f"{fresh_registry.host}/multi/c:3")
    client = proxied.client(fresh_registry.host)
    try:
        result = proxied.build(_scratch_dockerfile(), _files(), destinations=destinations,
                               client=client)
    finally:
        client.close()
    layers = [layer.digest for layer in result.layers]
    for digest in layers:  # streamed to multi/a only, mounted into multi/b
        assert proxied.proxy.count("POST", "from=multi%2Fa") >= 1
        assert proxied.proxy.count("POST", digest.split(":")[1]) == 1
    uploads = [s.path for s in proxied.proxy.seen if s.method == "POST" and "mount" not in s.path]
    assert all("/multi/a/" in path for path in uploads[:2])
    raw = skopeo_inspect_raw(fresh_registry.host, "multi/c:3")
    assert [x["digest"] for x in json.loads(raw)["layers"]] == layers
    assert proxied.blob_gets(layers) == 0  # streamed to both registries, not copied back


def test_tar_output_keeps_layers_and_still_streams(proxied: ProxiedBuilds) -> None:
    proxied.client_options.update(chunk_size=CHUNK)
    tar_path = proxied.tmp / "image.tar"
    output = OutputOptions(destinations=(f"{proxied.host}/keep/app:1",), tar_path=tar_path)
    result = proxied.build(_scratch_dockerfile(), _files(), output=output, cleanup=False)
    assert proxied.proxy.count("PATCH") >= 4
    kept = leftovers(proxied.tmp / "work1")
    assert sorted(kept) == sorted(layer.digest.split(":")[1] for layer in result.layers)
    with tarfile.open(tar_path) as archive:
        names = archive.getnames()
    assert "manifest.json" in names


def test_failed_build_stops_uploads_and_tags_nothing(proxied: ProxiedBuilds) -> None:
    import pytest

    from core.errors import StepError

    with pytest.raises(StepError):
        proxied.build(_scratch_dockerfile() + "COPY missing /m/\n", _files())
    assert proxied.proxy.count("PUT", "/manifests/") == 0
    assert not list(Path(proxied.tmp / "work1").iterdir()) or \
        sorted(os.listdir(proxied.tmp / "work1")) == ["cache"]


def test_zstd_layers_stream_too(proxied: ProxiedBuilds) -> None:
    proxied.client_options.update(chunk_size=CHUNK)
    output = OutputOptions(destinations=(f"{proxied.host}/zstd/app:1",), image_format="oci",
                           compression="zstd")
    result = proxied.build(_scratch_dockerfile(), _files(), output=output)
    import io

    import zstandard

    assert {layer.media_type for layer in result.layers} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"}
    with proxied.client() as client:  # umoci reads no zstd: check the blob itself
        blob = io.BytesIO()
        client.fetch_blob(parse_reference(f"{proxied.host}/zstd/app:1").context(),
                          result.layers[0].digest, blob)
    plain = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob.getvalue())).read()
    with tarfile.open(fileobj=io.BytesIO(plain)) as archive:
        member = archive.extractfile("one/a.bin")
        assert member is not None and member.read() == _noise(3 * CHUNK, 1)


def test_stages_outside_the_image_make_only_the_layers_someone_reads(
        proxied: ProxiedBuilds) -> None:
    dockerfile = (f"FROM {proxied.busybox} AS builder\nRUN echo built > /out\n"
                  "FROM builder AS tester\nRUN cat /out > /tested\n"
                  f"FROM {proxied.busybox}\nCOPY --from=builder /out /from-builder\n"
                  "COPY --from=tester /tested /from-tester\n")
    result = proxied.build(dockerfile, cleanup=False, target=None)
    image = result.destinations[0].split("/", 1)[1]
    rootfs = skopeo_unpack(proxied.registry.host, image, proxied.tmp / "unpack")
    assert (rootfs / "from-builder").read_text() == "built\n"
    assert (rootfs / "from-tester").read_text() == "built\n"
    assert proxied.proxy.count("PATCH") == 0 and len(result.layers) == 3
