"""`StreamUpload` and `copy_blob`: blobs whose digest is known only at the end, one chunk in
memory; refusal of chunks handled by spooling; blobs copied between registries as streams."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import RegistryError
from core.registry.push import blob_exists, copy_blob
from core.registry.upload import StreamUpload, UploadOptions
from tests.fixtures.proxy import Fault, FaultProxy, fault_proxy
from tests.fixtures.registry import RegistryServer, make_client

CHUNK = 64 * 1024


@pytest.fixture()
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as server:
        yield server


def _send(proxy: FaultProxy, data: bytes, repository: str, **extra: object) -> StreamUpload:
    client = make_client(proxy.host)
    conn = client.connection(proxy.host)
    upload = StreamUpload(conn, repository, options=UploadOptions(chunk_size=CHUNK, retries=2),
                          pause=lambda attempt, why: None, **extra)  # type: ignore[arg-type]
    for start in range(0, len(data), 10_000):
        upload.write(data[start:start + 10_000])
    upload.finish("sha256:" + hashlib.sha256(data).hexdigest())
    assert blob_exists(conn, repository, "sha256:" + hashlib.sha256(data).hexdigest())
    client.close()
    return upload


def test_small_blob_is_one_put(proxy: FaultProxy) -> None:
    _send(proxy, os.urandom(CHUNK // 2), "stream/small")
    assert proxy.count("PATCH") == 0 and proxy.count("PUT") == 1


def test_large_blob_goes_in_chunks_and_resumes(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="PATCH", status=503, after=1))
    _send(proxy, os.urandom(5 * CHUNK + 3), "stream/large")
    assert proxy.count("PATCH") >= 5
    assert proxy.count("GET", "/blobs/uploads/") == 1  # asked where to resume


def test_refused_chunks_without_spool_raise(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="PATCH", status=405, times=10))
    with pytest.raises(RegistryError):
        _send(proxy, os.urandom(2 * CHUNK), "stream/refused")


def test_refused_chunks_are_spooled_and_put_whole(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.add(Fault(method="PATCH", status=405, times=10))
    upload = _send(proxy, os.urandom(3 * CHUNK), "stream/spooled", spool_dir=tmp_path)
    assert upload.refused and proxy.count("PATCH") == 1
    assert list(tmp_path.iterdir()) == []


def test_copy_blob_streams_between_registries(proxy: FaultProxy,
                                              fresh_registry: RegistryServer) -> None:
    data = os.urandom(3 * CHUNK)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _send(proxy, data, "copy/source")
    client = make_client(proxy.host, fresh_registry.host)
    options = UploadOptions(chunk_size=CHUNK)
    source, target = client.connection(proxy.host), client.connection(fresh_registry.host)
    result = copy_blob(source, "copy/source", target, "copy/target", digest, len(data),
                       options=options, pause=lambda attempt, why: None)
    assert result.action == "uploaded" and blob_exists(target, "copy/target", digest)
    again = copy_blob(source, "copy/source", source, "copy/sibling", digest, len(data),
                      options=options, pause=lambda attempt, why: None)
    assert again.action == "mounted"
    client.close()
