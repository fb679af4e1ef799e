"""Layer compression: blobs that gzip, zstd and zlib accept, digests that match the bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
import zstandard

from core.errors import RegistryError, UsageError
from core.snapshot.compress import (
    Compression,
    LayerDigests,
    LayerWriter,
    available_cpus,
    cgroup_cpu_quota,
)


def sample(size: int) -> bytes:
    """Compressible and incompressible stretches, like a real layer."""
    text = b"".join(b"line %d of some config file\n" % i for i in range(size // 40 + 1))
    noise = os.urandom(size // 4)
    return (text[: size // 2] + noise + text[: size // 4])[:size]


def compress(data: bytes, *, pieces: int = 7919, **options: object) -> tuple[bytes, LayerDigests]:
    out = io.BytesIO()
    writer = LayerWriter(out.write, **options)  # type: ignore[arg-type]
    for start in range(0, len(data), pieces):
        writer.write(data[start:start + pieces])
    digests = writer.close()
    return out.getvalue(), digests


def check_digests(data: bytes, blob: bytes, digests: LayerDigests) -> None:
    assert digests.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert digests.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert (digests.size, digests.uncompressed_size) == (len(blob), len(data))


@pytest.mark.parametrize("size", [0, 1, 128 * 1024, 3 * 1024 * 1024 + 5])
def test_gzip_blob_is_one_valid_member(tmp_path: Path, size: int) -> None:
    data = sample(size)
    blob, digests = compress(data, compression=Compression.GZIP, threads=2)
    check_digests(data, blob, digests)
    assert digests.compression is Compression.GZIP
    assert gzip.decompress(blob) == data
    assert zlib.decompress(blob, wbits=31) == data  # one member, nothing after it
    (tmp_path / "layer.gz").write_bytes(blob)
    subprocess.run(["gzip", "-t", str(tmp_path / "layer.gz")], check=True)
    out = subprocess.run(["gzip", "-dc", str(tmp_path / "layer.gz")], check=True,
                         capture_output=True).stdout
    assert out == data


def test_gzip_bytes_do_not_depend_on_threads_or_write_sizes() -> None:
    data = sample(2 * 1024 * 1024 + 333)
    blobs = {compress(data, threads=t, pieces=p)[0]
             for t, p in ((1, 4096), (2, 100_000), (4, 1 << 20), (3, 512))}
    assert len(blobs) == 1


def test_gzip_level_is_honoured_and_checked() -> None:
    data = sample(1024 * 1024)
    fast, _ = compress(data, level=1)
    small, _ = compress(data, level=9)
    stored, _ = compress(data, level=0)
    assert len(small) < len(fast) < len(stored)
    assert gzip.decompress(stored) == data
    with pytest.raises(UsageError):
        LayerWriter(io.BytesIO(), level=10)
    with pytest.raises(UsageError):
        LayerWriter(io.BytesIO(), threads=0)


@pytest.mark.parametrize("size", [0, 5 * 1024 * 1024 + 1])
def test_zstd_blob_decompresses_and_is_thread_independent(tmp_path: Path, size: int) -> None:
    data = sample(size)
    blob, digests = compress(data, compression=Compression.ZSTD, threads=1)
    check_digests(data, blob, digests)
    assert compress(data, compression=Compression.ZSTD, threads=2, pieces=65536)[0] == blob
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob))
    assert reader.read() == data
    if shutil.which("zstd"):
        (tmp_path / "layer.zst").write_bytes(blob)
        out = subprocess.run(["zstd", "-dc", str(tmp_path / "layer.zst")], check=True,
                             capture_output=True).stdout
        assert out == data
    with pytest.raises(UsageError):
        LayerWriter(io.BytesIO(), compression=Compression.ZSTD, level=23)


def test_uncompressed_blob_is_the_tar_itself() -> None:
    data = sample(300_000)
    blob, digests = compress(data, compression=Compression.NONE)
    assert blob == data and digests.digest == digests.diff_id
    check_digests(data, blob, digests)


def test_a_failing_sink_fails_the_layer() -> None:
    def sink(chunk: bytes) -> None:
        raise RegistryError("upload refused", status=500)

    before = threading.active_count()
    with pytest.raises(RegistryError, match="upload refused"), LayerWriter(sink, threads=2) as w:
        for _ in range(200):
            w.write(os.urandom(64 * 1024))
    assert threading.active_count() == before
    writer = LayerWriter(sink, threads=2)
    writer.write(b"small")
    with pytest.raises(RegistryError, match="upload refused"):
        writer.close()  # the error surfaces at close when no later write saw it


def test_a_slow_sink_holds_back_the_writer_with_bounded_memory() -> None:
    received: list[int] = []

    def slow_sink(chunk: bytes) -> None:
        time.sleep(0.001)
        received.append(len(chunk))

    block = os.urandom(256 * 1024)
    tracemalloc.start()
    try:
        writer = LayerWriter(slow_sink, threads=2)
        for _ in range(128):  # 32 MiB of incompressible data
            writer.write(block)
        digests = writer.close()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digests.uncompressed_size == 32 * 1024 * 1024 and sum(received) == digests.size
    assert peak < 8 * 1024 * 1024


def test_abort_and_context_manager_stop_the_threads() -> None:
    before = threading.active_count()
    out = io.BytesIO()
    with pytest.raises(KeyError), LayerWriter(out, threads=2) as writer:
        writer.write(os.urandom(1 << 20))
        raise KeyError("step failed")
    with LayerWriter(out, compression=Compression.ZSTD) as writer:
        writer.write(b"data")
    with pytest.raises(UsageError):
        writer.write(b"more")
    writer.abort()
    assert threading.active_count() == before


def test_cgroup_quota_caps_the_cpu_count(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("50000 100000\n")
    assert cgroup_cpu_quota(cgroup_root=str(v2)) == 0.5
    assert available_cpus(cgroup_root=str(v2)) == 1
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(cgroup_root=str(v2)) is None
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("150000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(cgroup_root=str(tmp_path / "v1")) == 1.5
    assert available_cpus(cgroup_root=str(tmp_path / "v1")) == min(2, len(os.sched_getaffinity(0)))
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(cgroup_root=str(tmp_path / "v1")) is None
    assert cgroup_cpu_quota(cgroup_root=str(tmp_path / "none")) is None
    assert available_cpus(cgroup_root=str(tmp_path / "none")) == len(os.sched_getaffinity(0))
