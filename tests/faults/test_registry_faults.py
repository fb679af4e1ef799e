"""Registry faults, one kind at a time, through our fault proxy in front of a real registry.

Each kind must end in either a correct result (checked with skopeo, straight from the
registry) or a clear `RegistryError` — never another exception, never a tag on an incomplete
image. The random 20% fault run over a batch of pushes is in `test_fault_storm.py`.
"""

from __future__ import annotations

import email.utils
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import DigestMismatchError, RegistryError
from core.image.manifest import Platform
from core.image.reference import Reference, parse_reference
from tests.faults.verify import assert_complete, assert_unpacks_to, small_image, tag_digest
from tests.fixtures.images import push_built
from tests.fixtures.proxy import Fault, FaultProxy, fault_proxy
from tests.fixtures.registry import RegistryServer, make_client

AMD64 = Platform("linux", "amd64")


@pytest.fixture()
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as running:
        yield running


def ref(host: str, name: str) -> Reference:
    return parse_reference(f"{host}/{name}")


@pytest.mark.parametrize("fault", [
    Fault(method="HEAD", path_contains="/blobs/", reset=True, times=2),
    Fault(method="POST", path_contains="/blobs/uploads/", reset=True),
    Fault(method="PUT", path_contains="/blobs/uploads/", reset=True),
    Fault(method="PUT", path_contains="/manifests/", reset=True),
    Fault(method="PUT", path_contains="/manifests/", drop=True, delay=1.0),
    Fault(method="PUT", path_contains="/blobs/uploads/", status=500),
    Fault(method="POST", path_contains="/blobs/uploads/", status=502, times=2),
    Fault(method="PUT", path_contains="/manifests/", status=503, times=2),
    Fault(method="PUT", path_contains="/manifests/", status=502, forward_first=True),
    Fault(method="PUT", path_contains="/blobs/uploads/", status=502, forward_first=True),
    Fault(method="PUT", path_contains="/manifests/", truncate_half=True),
], ids=["reset-head", "reset-post", "reset-blob-put", "reset-manifest-put",
        "timeout-manifest-put", "500-blob-put", "502-post", "503-manifest-put",
        "lost-manifest-response", "lost-blob-response", "truncated-manifest-response"])
def test_transient_push_fault_is_survived(fault: Fault, proxy: FaultProxy,
                                          registry: RegistryServer,
                                          request: pytest.FixtureRequest) -> None:
    proxy.add(fault)
    name = f"faults/survive-{request.node.callspec.id}:v1"
    image, _ = small_image(name, seed=1)
    with make_client(proxy.host, retries=3, read_timeout=0.5) as client:
        digest = push_built(client, [ref(proxy.host, name)], image)
    assert fault.hits == fault.times
    assert digest == image.digest == tag_digest(registry, name)
    assert_complete(registry, name, digest)


def test_persistent_timeout_gives_up_in_bounded_time(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="GET", path_contains="/manifests/", drop=True, delay=0.6,
                    times=100))
    with make_client(proxy.host, retries=2, read_timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(RegistryError) as info:
            client.fetch_manifest(ref(proxy.host, "faults/stalled:v1"))
    assert info.value.retryable and "connection failed" in str(info.value)
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_persistent_server_error_is_a_clear_error(status: int, proxy: FaultProxy,
                                                  registry: RegistryServer) -> None:
    proxy.add(Fault(method="PUT", path_contains="/blobs/uploads/", status=status, times=100))
    name = f"faults/down-{status}:v1"
    image, _ = small_image(name, seed=2)
    with make_client(proxy.host, retries=2) as client, pytest.raises(RegistryError) as info:
        push_built(client, [ref(proxy.host, name)], image)
    assert info.value.status == status and info.value.retryable
    assert tag_digest(registry, name) is None


def _retry_after_date(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize("value", ["1", "date"])
def test_429_waits_for_retry_after(value: str, proxy: FaultProxy,
                                   registry: RegistryServer) -> None:
    name = "faults/throttled:v1"
    image, _ = small_image(name, seed=3)
    with make_client(registry.host) as client:
        push_built(client, [ref(registry.host, name)], image)
    header = "1" if value == "1" else _retry_after_date(2.0)
    proxy.add(Fault(method="GET", path_contains="/manifests/", status=429,
                    headers={"Retry-After": header}))
    with make_client(proxy.host, backoff_max=5.0) as client:
        started = time.monotonic()
        client.fetch_manifest(ref(proxy.host, name))
        waited = time.monotonic() - started
    assert 0.9 <= waited < 4.5


def test_truncated_bodies_are_fetched_again(proxy: FaultProxy, registry: RegistryServer) -> None:
    """A manifest, config or layer body cut off mid-way: the pull still returns verified
    content (manifests are fetched again, blobs resume with Range)."""
    name = "faults/truncated:v1"
    image, _ = small_image(name, seed=4, size=200 * 1024)
    with make_client(registry.host) as client:
        push_built(client, [ref(registry.host, name)], image)
    for part in ("/manifests/", image.config.digest, image.layers[0].digest):
        proxy.add(Fault(method="GET", path_contains=part, truncate_half=True))
    with make_client(proxy.host) as client:
        pulled = client.pull(ref(proxy.host, name), platform=AMD64)
        sink = io.BytesIO()
        client.fetch_blob(ref(proxy.host, name), image.layers[0].digest, sink,
                          size=image.layers[0].size)
    assert pulled.digest == image.digest and pulled.config_bytes == image.config.data
    assert sink.getvalue() == image.layers[0].data
    assert all(fault.hits == 1 for fault in proxy.faults)


def test_always_truncated_manifest_is_a_registry_error(proxy: FaultProxy,
                                                       registry: RegistryServer) -> None:
    name = "faults/always-truncated:v1"
    image, _ = small_image(name, seed=5)
    with make_client(registry.host) as client:
        push_built(client, [ref(registry.host, name)], image)
    proxy.add(Fault(method="GET", path_contains="/manifests/", truncate_half=True, times=100))
    with make_client(proxy.host, retries=2) as client, pytest.raises(RegistryError) as info:
        client.pull(ref(proxy.host, name), platform=AMD64)
    assert info.value.retryable and "cut off" in str(info.value)


@pytest.mark.parametrize("part", ["manifest", "config", "layer"])
def test_wrong_content_is_a_digest_mismatch(part: str, proxy: FaultProxy,
                                            registry: RegistryServer) -> None:
    """A registry (or something in between) serves other bytes than the digest names."""
    name = "faults/tampered:v1"
    image, _ = small_image(name, seed=6)
    with make_client(registry.host) as client:
        push_built(client, [ref(registry.host, name)], image)
    where = {"manifest": "/manifests/", "config": image.config.digest,
             "layer": image.layers[0].digest}[part]
    proxy.add(Fault(method="GET", path_contains=where, corrupt=True, times=100))
    with make_client(proxy.host, retries=1) as client, pytest.raises(DigestMismatchError):
        client.pull(ref(proxy.host, name), platform=AMD64)
        sink = io.BytesIO()
        client.fetch_blob(ref(proxy.host, name), image.layers[0].digest, sink,
                          size=image.layers[0].size)


def test_manifest_put_failing_after_the_blobs_leaves_the_tag_alone(
        proxy: FaultProxy, registry: RegistryServer, tmp_path: Path) -> None:
    """The blobs went up, the manifest PUT kept failing: the push fails clearly, the tag still
    names the previous complete image, and a later push completes without re-uploading."""
    name = "faults/manifest-fails:v1"
    old, _ = small_image(name, seed=7)
    new, new_data = small_image(name, seed=8)
    with make_client(registry.host) as client:
        push_built(client, [ref(registry.host, name)], old)
    fault = proxy.add(Fault(method="PUT", path_contains="/manifests/", status=500, times=100))
    with make_client(proxy.host, retries=2) as client, pytest.raises(RegistryError) as info:
        push_built(client, [ref(proxy.host, name)], new)
    assert info.value.status == 500 and "push manifest" in str(info.value)
    assert tag_digest(registry, name) == old.digest
    assert_complete(registry, name, old.digest)
    fault.times = 0
    uploads_before = proxy.count("PUT", "/blobs/uploads/")
    with make_client(proxy.host) as client:
        assert push_built(client, [ref(proxy.host, name)], new) == new.digest
    assert proxy.count("PUT", "/blobs/uploads/") == uploads_before  # blobs were all there
    assert tag_digest(registry, name) == new.digest
    assert_unpacks_to(registry, name, name, new_data, tmp_path)
