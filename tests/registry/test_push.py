"""Push to a real registry; check every image with skopeo and umoci."""

from __future__ import annotations

import io
import math
import random
import threading
import uuid
from pathlib import Path

import requests

from core.image.manifest import Platform
from core.image.mediatypes import OCI_INDEX
from core.image.reference import Reference, parse_reference
from core.registry import BlobSource
from tests.fixtures.images import (
    BuiltImage,
    blob_sources,
    compose_image,
    compose_index,
    push_built,
    skopeo_inspect_raw,
    skopeo_unpack,
)
from tests.fixtures.registry import RegistryServer, RequestLog, make_client

KiB = 1024


def _ref(server: RegistryServer, name: str) -> Reference:
    return parse_reference(f"{server.host}/{name}")


def _random(size: int, seed: int | None = None) -> bytes:
    return random.Random(seed if seed is not None else uuid.uuid4().int).randbytes(size)


def _image(*sizes: int, oci: bool = False, arch: str = "amd64") -> BuiltImage:
    layers = [{f"data/layer{i}.bin": _random(size), f"etc/id{i}": uuid.uuid4().bytes}
              for i, size in enumerate(sizes)]
    return compose_image(layers, oci=oci, arch=arch)


def _check_with_tools(server: RegistryServer, name: str, image: BuiltImage, workdir: Path,
                      *, arch: str | None = None) -> None:
    """skopeo sees exactly our manifest; umoci unpacks the files we put in the layers."""
    if image.media_type != OCI_INDEX:
        assert skopeo_inspect_raw(server.host, name) == image.manifest
    rootfs = skopeo_unpack(server.host, name, workdir, arch=arch)
    assert (rootfs / "data" / "layer0.bin").is_file()


def test_monolithic_push(registry: RegistryServer, tmp_path: Path) -> None:
    log = RequestLog()
    image = _image(200 * KiB, 50 * KiB)
    with make_client(registry.host, log=log) as client:
        digest = push_built(client, [_ref(registry, "push/mono:v1")], image)
    assert digest == image.digest
    assert log.count("PATCH") == 0
    assert log.count("PUT", "/blobs/uploads/") == 3
    _check_with_tools(registry, "push/mono:v1", image, tmp_path)
    rootfs = skopeo_unpack(registry.host, "push/mono:v1", tmp_path / "again")
    assert (rootfs / "data/layer1.bin").stat().st_size == 50 * KiB


def test_chunked_push_follows_location(registry: RegistryServer, tmp_path: Path) -> None:
    log = RequestLog()
    image = _image(300 * KiB, oci=True)
    layer = image.layers[0]
    chunk = 64 * KiB
    with make_client(registry.host, log=log, chunk_size=chunk,
                     monolithic_threshold=16 * KiB) as client:
        push_built(client, [_ref(registry, "push/chunked:v1")], image)
    assert log.count("PATCH") == math.ceil(layer.size / chunk)
    patch_urls = [url for method, url, _, _ in log.entries if method == "PATCH"]
    assert len(set(patch_urls)) == len(patch_urls)  # each chunk went to the latest Location
    _check_with_tools(registry, "push/chunked:v1", image, tmp_path)


def test_existing_blobs_are_skipped(registry: RegistryServer) -> None:
    image = _image(40 * KiB)
    ref = _ref(registry, "push/skip:v1")
    with make_client(registry.host) as client:
        push_built(client, [ref], image)
    log = RequestLog()
    with make_client(registry.host, log=log) as client:
        results = [client.push_blob(ref, source) for source in blob_sources(image)]
        push_built(client, [ref.with_tag("v2")], image)
    assert {r.action for r in results} == {"exists"}
    assert log.count("HEAD", "/blobs/") == 2 * len(image.blobs)
    assert log.count("POST") == log.count("PATCH") == log.count("PUT", "/blobs/") == 0
    assert log.count("PUT", "/manifests/v2") == 1


def test_cross_repository_mount(registry: RegistryServer, tmp_path: Path) -> None:
    image = _image(64 * KiB)
    with make_client(registry.host) as client:
        push_built(client, [_ref(registry, "push/mount-src:v1")], image)
    log = RequestLog()
    target = _ref(registry, "push/mount-dst:v1")
    with make_client(registry.host, log=log) as client:
        results = [client.push_blob(target, source, mount_from=["push/mount-src"])
                   for source in blob_sources(image)]
        client.push_manifest(target, image.manifest, image.media_type)
    assert {r.action for r in results} == {"mounted"}
    assert log.count("POST", "mount=") == len(image.blobs)
    assert log.count("PUT", "/blobs/") == log.count("PATCH") == 0
    _check_with_tools(registry, "push/mount-dst:v1", image, tmp_path)


def test_mount_refused_falls_back_to_upload(registry: RegistryServer) -> None:
    image = _image(8 * KiB)
    log = RequestLog()
    target = _ref(registry, "push/mount-fallback:v1")
    with make_client(registry.host, log=log) as client:
        result = client.push_blob(target, blob_sources(image)[1],
                                  mount_from=["push/never-pushed"])
    assert result.action == "uploaded"
    assert log.count("POST") == 1  # the 202 of the mount request started the upload
    assert log.count("PUT", "/blobs/uploads/") == 1


def test_several_tags_and_repositories_share_blobs(registry: RegistryServer,
                                                   tmp_path: Path) -> None:
    image = _image(30 * KiB, 20 * KiB)
    refs = [_ref(registry, f"push/tags:{tag}") for tag in ("a", "b", "c")]
    refs.append(_ref(registry, "push/tags-copy:latest"))
    log = RequestLog()
    with make_client(registry.host, log=log) as client:
        digest = push_built(client, refs, image)
    assert log.count("PUT", "/blobs/uploads/") == len(image.blobs)
    assert log.count("POST", "mount=") == len(image.blobs)  # the second repository mounts
    assert log.count("PUT", "/manifests/") == 4
    for tag in ("a", "b", "c"):
        assert skopeo_inspect_raw(registry.host, f"push/tags:{tag}") == image.manifest
    _check_with_tools(registry, "push/tags-copy:latest", image, tmp_path)
    with make_client(registry.host) as client:
        pulled = client.pull(refs[1], platform=Platform("linux", "amd64"))
    assert pulled.digest == digest


def test_index_push(registry: RegistryServer, tmp_path: Path) -> None:
    amd = _image(10 * KiB, oci=True)
    arm = _image(12 * KiB, oci=True, arch="arm64")
    index = compose_index({Platform("linux", "amd64"): amd,
                           Platform("linux", "arm64", "v8"): arm})
    ref = _ref(registry, "push/index:v1")
    with make_client(registry.host) as client:
        for image in (amd, arm):
            push_built(client, [ref.with_digest(image.digest)], image)
        digest = client.push_manifest(ref, index, OCI_INDEX)
        pulled = client.pull(ref, platform=Platform("linux", "arm64"))
    assert skopeo_inspect_raw(registry.host, "push/index:v1") == index
    assert pulled.index_digest == digest and pulled.digest == arm.digest
    rootfs = skopeo_unpack(registry.host, "push/index:v1", tmp_path, arch="arm64")
    assert (rootfs / "data/layer0.bin").stat().st_size == 12 * KiB


def test_upload_stream_of_unknown_digest(registry: RegistryServer) -> None:
    data = _random(150 * KiB)
    ref = _ref(registry, "push/stream:v1")
    with make_client(registry.host, chunk_size=32 * KiB) as client:
        digest, size = client.upload_stream(ref, io.BytesIO(data).read)
        assert client.blob_exists(ref, digest)
        sink = io.BytesIO()
        client.fetch_blob(ref, digest, sink, size=size)
    assert size == len(data) and sink.getvalue() == data


def test_large_file_source_and_concurrency(registry: RegistryServer, tmp_path: Path) -> None:
    image = _image(*(40 * KiB for _ in range(6)))
    files = []
    for i, blob in enumerate(image.blobs):
        path = tmp_path / f"blob{i}"
        path.write_bytes(blob.data)
        files.append(BlobSource.from_path(path))
    assert [f.digest for f in files] == [b.digest for b in image.blobs]
    threads: set[str] = set()

    def session() -> requests.Session:
        s = requests.Session()
        s.hooks["response"].append(lambda r, *a, **k: threads.add(threading.current_thread().name))
        return s

    with make_client(registry.host, max_concurrent_uploads=3, session_factory=session,
                     chunk_size=16 * KiB, monolithic_threshold=20 * KiB) as client:
        client.push_image([_ref(registry, "push/files:v1")], blobs=files,
                          manifest=image.manifest, media_type=image.media_type)
    assert 1 < len({t for t in threads if t.startswith("blob-push")}) <= 3
    _check_with_tools(registry, "push/files:v1", image, tmp_path / "check")


def test_relative_locations_are_followed(relative_registry: RegistryServer,
                                         tmp_path: Path) -> None:
    locations: list[str] = []

    def session() -> requests.Session:
        s = requests.Session()
        s.hooks["response"].append(
            lambda r, *a, **k: locations.append(r.headers.get("Location", "")))
        return s

    image = _image(100 * KiB)
    with make_client(relative_registry.host, session_factory=session, chunk_size=32 * KiB,
                     monolithic_threshold=64 * KiB) as client:
        push_built(client, [_ref(relative_registry, "push/relative:v1")], image)
    uploads = [loc for loc in locations if "/blobs/uploads/" in loc]
    assert uploads and all(loc.startswith("/v2/") and "_state=" in loc for loc in uploads)
    _check_with_tools(relative_registry, "push/relative:v1", image, tmp_path)
