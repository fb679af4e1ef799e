"""Pull from a real registry images that buildah and skopeo pushed."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from pathlib import Path

import pytest
import zstandard

from core.errors import DigestMismatchError, PlatformMismatchError, RegistryError
from core.image.manifest import Platform
from core.image.mediatypes import DOCKER_MANIFEST, OCI_INDEX, OCI_LAYER_ZSTD, OCI_MANIFEST
from core.image.reference import parse_reference
from core.registry import BlobSource, RegistryClient
from core.registry.pull import PulledImage
from tests.fixtures.images import BaseImages, gzip_layer
from tests.fixtures.proxy import BlobStore, Fault, fault_proxy
from tests.fixtures.registry import RegistryServer, RequestLog, make_client

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")


def _layer_files(data: bytes, compression: str) -> dict[str, bytes]:
    raw = gzip.decompress(data) if compression == "gzip" else (
        zstandard.ZstdDecompressor().decompressobj().decompress(data))
    out = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                out[member.name.lstrip("./")] = extracted.read()
    return out


def _pull_layer(client: RegistryClient, image: PulledImage, host: str) -> bytes:
    layer = image.manifest.layers[0]
    sink = io.BytesIO()
    ref = parse_reference(f"{host}/{image.repository}:x")
    count = client.fetch_blob(ref, layer.digest, sink, size=layer.size)
    assert count == layer.size
    return sink.getvalue()


def test_pull_docker_schema2_gzip(registry: RegistryServer, base_images: BaseImages) -> None:
    with make_client(registry.host) as client:
        image = client.pull(parse_reference(f"{registry.host}/{base_images.docker_gzip}"),
                            platform=AMD64)
        assert image.manifest.media_type == DOCKER_MANIFEST
        assert image.index_digest is None
        assert len(image.config.diff_ids) == len(image.manifest.layers) == 1
        files = _layer_files(_pull_layer(client, image, registry.host), "gzip")
    assert files["etc/bucketbuild-marker"].decode() == base_images.markers["gzip"]
    assert files["bin/busybox"] == Path("/bin/busybox").read_bytes()


def test_pull_oci_zstd_layer(registry: RegistryServer, base_images: BaseImages) -> None:
    with make_client(registry.host) as client:
        image = client.pull(parse_reference(f"{registry.host}/{base_images.oci_zstd}"),
                            platform=AMD64)
        assert image.manifest.media_type == OCI_MANIFEST
        assert image.manifest.layers[0].media_type == OCI_LAYER_ZSTD
        files = _layer_files(_pull_layer(client, image, registry.host), "zstd")
    assert files["etc/bucketbuild-marker"].decode() == base_images.markers["zstd"]


@pytest.mark.parametrize(("platform", "marker"), [(AMD64, "amd64"), (ARM64, "arm64"),
                                                  (Platform("linux", "aarch64"), "arm64")])
def test_pull_index_selects_platform(registry: RegistryServer, base_images: BaseImages,
                                     platform: Platform, marker: str) -> None:
    ref = parse_reference(f"{registry.host}/{base_images.multi}")
    with make_client(registry.host) as client:
        index = client.fetch_manifest(ref)
        assert index.media_type == OCI_INDEX
        image = client.pull(ref, platform=platform)
        assert image.index_digest == index.digest
        assert image.config.architecture == ("arm64" if marker == "arm64" else "amd64")
        files = _layer_files(_pull_layer(client, image, registry.host), "gzip")
    assert files["etc/bucketbuild-marker"].decode() == base_images.markers[marker]


def test_pull_index_without_platform_lists_offers(registry: RegistryServer,
                                                  base_images: BaseImages) -> None:
    ref = parse_reference(f"{registry.host}/{base_images.multi}")
    with make_client(registry.host) as client, pytest.raises(PlatformMismatchError) as info:
        client.pull(ref, platform=Platform("linux", "s390x"))
    assert "linux/amd64" in str(info.value) and "linux/arm64/v8" in str(info.value)


def test_pull_by_digest_and_tag_plus_digest(registry: RegistryServer,
                                            base_images: BaseImages) -> None:
    ref = parse_reference(f"{registry.host}/{base_images.oci_gzip}")
    with make_client(registry.host) as client:
        by_tag = client.pull(ref, platform=AMD64)
        by_digest = client.pull(ref.with_digest(by_tag.digest), platform=AMD64)
    assert by_digest.manifest_bytes == by_tag.manifest_bytes


def test_head_manifest(registry: RegistryServer, base_images: BaseImages) -> None:
    ref = parse_reference(f"{registry.host}/{base_images.multi}")
    with make_client(registry.host) as client:
        fetched = client.fetch_manifest(ref)
        found = client.head_manifest(ref)
        by_digest = client.head_manifest(ref.with_digest(fetched.digest))
        missing = client.head_manifest(ref.with_tag("never-pushed"))
    assert found is not None and by_digest == found and missing is None
    assert (found.digest, found.size, found.media_type) == (
        fetched.digest, len(fetched.data), OCI_INDEX)


def test_missing_manifest_is_a_registry_error(registry: RegistryServer) -> None:
    ref = parse_reference(f"{registry.host}/base/busybox:no-such-tag")
    with make_client(registry.host) as client, pytest.raises(RegistryError) as info:
        client.fetch_manifest(ref)
    assert info.value.status == 404
    assert "MANIFEST_UNKNOWN" in info.value.codes
    assert info.value.registry == registry.host and not info.value.retryable


def _push_unique_blob(registry: RegistryServer, repo: str, data: bytes) -> str:
    with make_client(registry.host) as client:
        ref = parse_reference(f"{registry.host}/{repo}:x")
        return client.push_blob(ref, BlobSource.from_bytes(data)).digest


def test_corrupted_blob_on_disk_is_detected(registry: RegistryServer) -> None:
    data = b"corrupt-me " * 5000 + __name__.encode()
    digest = _push_unique_blob(registry, "pull/corrupt", data)
    path = registry.blob_data_path(digest)
    path.write_bytes(b"X" + data[1:])  # same size, different content
    ref = parse_reference(f"{registry.host}/pull/corrupt:x")
    with make_client(registry.host) as client, pytest.raises(DigestMismatchError) as info:
        client.fetch_blob(ref, digest, io.BytesIO(), size=len(data))
    assert digest in str(info.value) and info.value.registry == registry.host


def test_blob_longer_than_declared_is_detected(registry: RegistryServer) -> None:
    data = b"grow-me " * 3000
    digest = _push_unique_blob(registry, "pull/longer", data)
    registry.blob_data_path(digest).write_bytes(data + b"extra")
    ref = parse_reference(f"{registry.host}/pull/longer:x")
    sink = io.BytesIO()
    with make_client(registry.host) as client, pytest.raises(DigestMismatchError):
        client.fetch_blob(ref, digest, sink, size=len(data))
    assert len(sink.getvalue()) <= len(data)


def test_interrupted_download_resumes_with_range(registry: RegistryServer) -> None:
    blob, _ = gzip_layer({"big": random.Random(7).randbytes(300_000)})
    digest = _push_unique_blob(registry, "pull/resume", blob.data)
    with fault_proxy(registry.host) as proxy:
        proxy.add(Fault(method="GET", path_contains="/blobs/", truncate_after=1000, times=2))
        ref = parse_reference(f"{proxy.host}/pull/resume:x")
        sink = io.BytesIO()
        with make_client(proxy.host) as client:
            client.fetch_blob(ref, digest, sink, size=blob.size)
        ranges = [s.headers.get("Range") for s in proxy.seen if "/blobs/" in s.path]
    assert ranges, proxy.seen
    assert sink.getvalue() == blob.data
    assert ranges[0] is None and ranges[1] == "bytes=1000-" and ranges[2] == "bytes=2000-"


def test_redirect_to_storage_drops_authorization(token_registry: RegistryServer,
                                                 base_images: BaseImages) -> None:
    ref_name = base_images.token_image
    with make_client(token_registry.host) as client:
        image = client.pull(parse_reference(f"{token_registry.host}/{ref_name}"),
                            platform=AMD64)
        layer = image.manifest.layers[0]
        content = io.BytesIO()
        client.fetch_blob(parse_reference(f"{token_registry.host}/{ref_name}"), layer.digest,
                          content)
    store = BlobStore({layer.digest: content.getvalue()})
    try:
        with fault_proxy(token_registry.host) as proxy, make_client(proxy.host) as client:
            proxy.add(Fault(method="GET", path_contains=f"/blobs/{layer.digest}",
                            redirect_to=store.base_url))
            sink = io.BytesIO()
            client.fetch_blob(parse_reference(f"{proxy.host}/{ref_name}"), layer.digest, sink,
                              size=layer.size)
            registry_get = next(s for s in proxy.seen if s.path.endswith(layer.digest))
    finally:
        store.stop()
    assert sink.getvalue() == content.getvalue()
    assert registry_get.headers.get("Authorization", "").startswith("Bearer ")
    assert len(store.seen) == 1 and "Authorization" not in store.seen[0]


def test_pull_counts_requests(registry: RegistryServer, base_images: BaseImages) -> None:
    log = RequestLog()
    with make_client(registry.host, log=log) as client:
        client.pull(parse_reference(f"{registry.host}/{base_images.multi}"), platform=ARM64)
    assert log.count("GET", "/manifests/") == 2
    assert log.count("GET", "/blobs/") == 1
