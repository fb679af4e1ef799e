"""Retries, backoff and upload resume, through a fault-injecting proxy in front of a registry."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import RegistryError
from core.image.reference import Reference, parse_reference
from tests.fixtures.images import BuiltImage, compose_image, push_built, skopeo_unpack
from tests.fixtures.proxy import Fault, FaultProxy, fault_proxy
from tests.fixtures.registry import RegistryServer, free_port, make_client

KiB = 1024


@pytest.fixture()
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as running:
        yield running


def _image(size: int = 20 * KiB) -> BuiltImage:
    data = random.Random(uuid.uuid4().int).randbytes(size)
    return compose_image([{"data/layer0.bin": data}])


def _ref(host: str, name: str) -> Reference:
    return parse_reference(f"{host}/{name}")


def test_transient_503_and_429_are_retried(proxy: FaultProxy, registry: RegistryServer,
                                           tmp_path: Path) -> None:
    for method, part in (("HEAD", "/blobs/"), ("POST", "/blobs/uploads/"),
                         ("PUT", "/blobs/uploads/"), ("PUT", "/manifests/")):
        proxy.add(Fault(method=method, path_contains=part, status=503, times=1))
    proxy.add(Fault(method="PUT", path_contains="/manifests/", status=429,
                    headers={"Retry-After": "0"}, times=1))
    image = _image()
    with make_client(proxy.host, retries=3) as client:
        digest = push_built(client, [_ref(proxy.host, "retry/transient:v1")], image)
    assert digest == image.digest
    assert all(fault.hits == fault.times for fault in proxy.faults)
    assert proxy.count("PUT", "/manifests/") == 3
    rootfs = skopeo_unpack(registry.host, "retry/transient:v1", tmp_path)
    assert (rootfs / "data/layer0.bin").is_file()


def test_retry_after_is_honoured(proxy: FaultProxy, registry: RegistryServer) -> None:
    image = _image()
    with make_client(registry.host) as client:
        push_built(client, [_ref(registry.host, "retry/after:v1")], image)
    proxy.add(Fault(method="GET", path_contains="/manifests/", status=429,
                    headers={"Retry-After": "1"}))
    with make_client(proxy.host, backoff_max=5.0) as client:
        started = time.monotonic()
        client.fetch_manifest(_ref(proxy.host, "retry/after:v1"))
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 4.0


def test_persistent_500_gives_up(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="GET", path_contains="/manifests/", status=500, times=1000))
    with make_client(proxy.host, retries=4) as client:
        started = time.monotonic()
        with pytest.raises(RegistryError) as info:
            client.fetch_manifest(_ref(proxy.host, "retry/down:v1"))
        elapsed = time.monotonic() - started
    assert info.value.retryable and info.value.status == 500
    assert "UNAVAILABLE" in info.value.codes
    assert proxy.count("GET", "/manifests/") == 5
    assert elapsed < 3.0


def test_unreachable_registry_is_retryable() -> None:
    host = f"127.0.0.1:{free_port()}"
    with make_client(host, retries=2) as client:
        started = time.monotonic()
        with pytest.raises(RegistryError) as info:
            client.fetch_manifest(_ref(host, "nobody/home:v1"))
    assert info.value.retryable and info.value.registry == host
    assert time.monotonic() - started < 3.0


def test_dropped_connection_is_retried(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="GET", path_contains="/v2/", drop=True, times=2))
    with make_client(proxy.host) as client, pytest.raises(RegistryError) as info:
        client.fetch_manifest(_ref(proxy.host, "retry/none:v1"))
    assert info.value.status == 404  # reached the registry after two dropped attempts
    assert all(fault.hits == 2 for fault in proxy.faults)


@pytest.mark.parametrize("failing_chunk", [0, 1])
def test_chunked_upload_resumes_from_range(proxy: FaultProxy, registry: RegistryServer,
                                           tmp_path: Path, failing_chunk: int) -> None:
    """The registry never saw the failed chunk: ask for its Range, send the chunk again.

    Chunk 0 covers distribution's `Range: 0-0` answer for an empty upload."""
    image = _image(200 * KiB)
    chunks = -(-image.layers[0].size // (64 * KiB))
    proxy.add(Fault(method="PATCH", path_contains="/blobs/uploads/", status=503,
                    after=1 + failing_chunk))
    with make_client(proxy.host, chunk_size=64 * KiB, monolithic_threshold=0,
                     max_concurrent_uploads=1) as client:
        push_built(client, [_ref(proxy.host, "retry/resume:v1")], image)
    assert proxy.count("GET", "/blobs/uploads/") == 1
    assert proxy.count("POST", "/blobs/uploads/") == 2  # config + layer, no restart
    assert proxy.count("PATCH") == 1 + chunks + 1  # config, layer chunks, one resent
    rootfs = skopeo_unpack(registry.host, "retry/resume:v1", tmp_path)
    assert (rootfs / "data/layer0.bin").stat().st_size == 200 * KiB


def test_lost_chunk_response_restarts_upload(proxy: FaultProxy, registry: RegistryServer,
                                             tmp_path: Path) -> None:
    """The registry took the chunk but the answer was lost: distribution refuses the stale
    Location, so the upload starts over."""
    image = _image(200 * KiB)
    proxy.add(Fault(method="PATCH", path_contains="/blobs/uploads/", status=502, after=1,
                    forward_first=True))
    with make_client(proxy.host, chunk_size=64 * KiB, monolithic_threshold=0,
                     max_concurrent_uploads=1) as client:
        push_built(client, [_ref(proxy.host, "retry/restart-chunked:v1")], image)
    assert proxy.count("POST", "/blobs/uploads/") == 3
    rootfs = skopeo_unpack(registry.host, "retry/restart-chunked:v1", tmp_path)
    assert (rootfs / "data/layer0.bin").stat().st_size == 200 * KiB


def test_monolithic_put_failure_restarts_upload(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="PUT", path_contains="/blobs/uploads/", status=500, times=1,
                    forward_first=False))
    image = _image()
    with make_client(proxy.host) as client:
        push_built(client, [_ref(proxy.host, "retry/restart:v1")], image)
    assert proxy.count("POST", "/blobs/uploads/") == len(image.blobs) + 1
