"""Decompression by magic bytes, truncation and corruption, and the byte budget against bombs."""

from __future__ import annotations

import gzip
import io
import resource
import subprocess
from pathlib import Path

import pytest
import zstandard

from core.errors import ArchiveError, BudgetError
from core.rootfs.compression import Compression, decompressed, detect
from tests.rootfs.craft import Tar, compress

KINDS = ["none", "gzip", "zstd", "bzip2", "xz"]
PLAIN = Tar().file("a", b"hello" * 1000).file("b", bytes(range(256)) * 64).bytes()


class Trickle(io.RawIOBase):
    """A source that hands out at most a few bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(3, len(buffer), len(self._data))
        memoryview(buffer).cast("B")[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


def plain_of(data: bytes, **kw: int) -> tuple[Compression, bytes]:
    kind, stream = decompressed(io.BytesIO(data), **kw)
    return kind, stream.read()


@pytest.mark.parametrize("kind", KINDS)
def test_each_format_round_trips(kind: str) -> None:
    assert plain_of(compress(PLAIN, kind)) == (Compression(kind), PLAIN)


@pytest.mark.parametrize("kind", KINDS)
def test_short_reads_from_the_source(kind: str) -> None:
    source = io.BufferedReader(Trickle(compress(PLAIN, kind)), buffer_size=5)
    found, stream = decompressed(source)
    assert (found, stream.read()) == (Compression(kind), PLAIN)


def test_formats_made_by_other_tools(tmp_path: Path) -> None:
    (tmp_path / "in.tar").write_bytes(PLAIN)
    for tool, kind in (("gzip", "gzip"), ("bzip2", "bzip2"), ("xz", "xz")):
        out = subprocess.run([tool, "-c", str(tmp_path / "in.tar")], check=True,
                             capture_output=True).stdout
        assert plain_of(out) == (Compression(kind), PLAIN)


def test_concatenated_members_and_frames() -> None:
    assert plain_of(gzip.compress(PLAIN[:1024]) + gzip.compress(PLAIN[1024:]))[1] == PLAIN
    zc = zstandard.ZstdCompressor(write_checksum=True)
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"skip"
    joined = zc.compress(PLAIN[:1000]) + skippable + zc.compress(PLAIN[1000:])
    assert plain_of(joined)[1] == PLAIN


def test_streamed_zstd_without_content_size() -> None:
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        for i in range(0, len(PLAIN), 1000):
            writer.write(PLAIN[i:i + 1000])
    assert plain_of(out.getvalue()) == (Compression.ZSTD, PLAIN)


def test_a_plain_tar_that_starts_like_bzip2_is_plain() -> None:
    data = Tar().file("BZh91AY&SY", b"x").bytes()
    assert detect(data[:512]) is Compression.NONE
    assert plain_of(data)[1] == data


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "xz"])
@pytest.mark.parametrize("cut", [0.5, 0.9, -1])
def test_truncated_streams_are_errors(kind: str, cut: float) -> None:
    data = compress(PLAIN, kind)
    end = len(data) - 1 if cut == -1 else int(len(data) * cut)
    with pytest.raises(ArchiveError, match=r"truncated|corrupt"):
        plain_of(data[:end])


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "xz"])
def test_corrupt_streams_are_errors(kind: str) -> None:
    # zstd frames carry a checksum only when asked to; without one, damage is caught by the
    # tar headers or the layer digest instead
    packed = (zstandard.ZstdCompressor(write_checksum=True).compress(PLAIN) if kind == "zstd"
              else compress(PLAIN, kind))
    data = bytearray(packed)
    for i in range(len(data) // 3, len(data) // 3 + 40):
        data[i] ^= 0x5A
    with pytest.raises(ArchiveError):
        plain_of(bytes(data))


def test_garbage_after_a_zstd_frame_is_an_error() -> None:
    with pytest.raises(ArchiveError):
        plain_of(compress(PLAIN, "zstd") + b"garbage!")


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "xz"])
def test_bomb_stops_at_the_budget_with_bounded_memory(kind: str) -> None:
    zeros = b"\0" * (1 << 20)
    if kind == "zstd":
        out = io.BytesIO()
        with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
            for _ in range(16):
                writer.write(zeros)
        bomb = out.getvalue()
    else:
        bomb = compress(zeros * 16, kind)  # 16 MiB of zeros
    assert len(bomb) < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BudgetError, match="more than the allowed"):
        _, stream = decompressed(io.BytesIO(bomb), max_bytes=4 << 20)
        while stream.read(1 << 16):
            pass
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024


def test_budget_allows_exactly_the_limit() -> None:
    assert plain_of(compress(PLAIN, "gzip"), max_bytes=len(PLAIN))[1] == PLAIN
    with pytest.raises(BudgetError):
        plain_of(compress(PLAIN, "gzip"), max_bytes=len(PLAIN) - 1)
