"""Decompressing archive streams: format by magic bytes, bounded memory, optional byte budget.

The compressed source is read sequentially and never seeked; what comes out is a buffered
binary stream of the plain archive. Corrupt or truncated input raises `ArchiveError`; more
plain bytes than `max_bytes` raises `BudgetError` (this is what stops a decompression bomb).
"""

from __future__ import annotations

import bz2
import enum
import gzip
import io
import lzma
import tarfile
import zlib
from typing import BinaryIO, Protocol

import zstandard

from core.errors import ArchiveError, BudgetError

#: read size for sources and size of the buffer handed to the archive reader
CHUNK = 1 << 16

_PEEK = 512


class _Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class Compression(enum.StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"
    XZ = "xz"


_MAGIC = (
    (b"\x1f\x8b", Compression.GZIP),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
    (b"BZh", Compression.BZIP2),
    (b"\xfd7zXZ\x00", Compression.XZ),
)


def detect(head: bytes) -> Compression:
    """The compression of a stream starting with `head` (up to its first 512 bytes).

    A valid tar header wins over a magic number, so a plain archive whose first name happens to
    start with `BZh` is still read as plain.
    """
    if len(head) == _PEEK and _is_tar_header(head):
        return Compression.NONE
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


def decompressed(source: BinaryIO, *, max_bytes: int | None = None,
                 ) -> tuple[Compression, io.BufferedReader]:
    """The plain stream inside `source` and the compression that was found.

    `max_bytes` limits the plain bytes that may be read (None: no limit).
    """
    head = _read_up_to(source, _PEEK)
    kind = detect(head)
    raw = io.BufferedReader(_Prefixed(head, source), buffer_size=CHUNK)
    inner: _Readable
    if kind is Compression.GZIP:
        inner = gzip.GzipFile(fileobj=raw, mode="rb")
    elif kind is Compression.BZIP2:
        inner = bz2.BZ2File(raw)
    elif kind is Compression.XZ:
        inner = lzma.LZMAFile(raw)  # noqa: SIM115 - closed with the stream it reads
    elif kind is Compression.ZSTD:
        inner = _ZstdReader(raw)
    else:
        inner = raw
    return kind, io.BufferedReader(_Guarded(inner, kind, max_bytes), buffer_size=CHUNK)


def _is_tar_header(block: bytes) -> bool:
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    return True


def _read_up_to(source: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        part = source.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


class _Prefixed(io.RawIOBase):
    """`head` followed by the rest of `source`."""

    def __init__(self, head: bytes, source: BinaryIO) -> None:
        self._head = memoryview(head)
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._source.read(len(view))
        view[: len(data)] = data
        return len(data)


class _ZstdFrames:
    """Follows zstd frame and block boundaries as compressed bytes pass, so that a stream cut
    short (which the zstd stream reader reports as a clean end) is noticed."""

    def __init__(self) -> None:
        self._state = "magic"
        self._need = 4
        self._skip = 0
        self._checksum = False
        self._buf = bytearray()
        self.broken = False

    @property
    def complete(self) -> bool:
        return not self.broken and self._state == "magic" and not self._buf and not self._skip

    def feed(self, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view) and not self.broken:
            if self._skip:
                step = min(self._skip, len(view) - pos)
                self._skip -= step
                pos += step
                continue
            step = min(self._need - len(self._buf), len(view) - pos)
            self._buf += view[pos: pos + step]
            pos += step
            if len(self._buf) == self._need:
                value = int.from_bytes(self._buf, "little")
                self._buf.clear()
                self._advance(value)

    def _advance(self, value: int) -> None:
        if self._state == "magic":
            self._magic(value)
        elif self._state == "descriptor":
            single = value >> 5 & 1
            self._checksum = bool(value >> 2 & 1)
            fcs = (1 if single else 0, 2, 4, 8)[value >> 6]
            self._skip = (0 if single else 1) + (0, 1, 2, 4)[value & 3] + fcs
            self._state, self._need = "block", 3
        elif self._state == "block":
            kind, size = value >> 1 & 3, value >> 3
            self.broken = kind == 3
            self._skip = 1 if kind == 1 else size
            if value & 1:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4
        else:  # size of a skippable frame
            self._skip = value
            self._state, self._need = "magic", 4

    def _magic(self, value: int) -> None:
        if value == 0xFD2FB528:
            self._state, self._need = "descriptor", 1
        elif value & 0xFFFFFFF0 == 0x184D2A50:
            self._state, self._need = "skippable", 4
        else:
            self.broken = True


class _Tracked(io.RawIOBase):
    """A source whose bytes are shown to a `_ZstdFrames` on their way to the decompressor."""

    def __init__(self, source: BinaryIO, frames: _ZstdFrames) -> None:
        self._source = source
        self._frames = frames

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        self._frames.feed(data)
        return len(data)


class _ZstdReader:
    """zstd frames, one after another, with truncation reported as an error."""

    def __init__(self, raw: BinaryIO) -> None:
        self._frames = _ZstdFrames()
        tracked = io.BufferedReader(_Tracked(raw, self._frames), buffer_size=CHUNK)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            tracked, read_size=CHUNK, read_across_frames=True)

    def readinto(self, buffer: memoryview) -> int:
        count: int = self._reader.readinto(buffer)
        if count == 0 and not self._frames.complete:
            raise ArchiveError("zstd stream is truncated or corrupt")
        return count


class _Guarded(io.RawIOBase):
    """Plain bytes from a decompressor: errors become `ArchiveError`, the budget is enforced."""

    def __init__(self, inner: _Readable, kind: Compression,
                 max_bytes: int | None) -> None:
        self._inner = inner
        self._kind = kind
        self._max = max_bytes
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            count = self._inner.readinto(view)
        except EOFError as e:
            raise ArchiveError(f"{self._kind} stream is truncated: {e}") from e
        except (OSError, zlib.error, lzma.LZMAError, zstandard.ZstdError) as e:
            raise ArchiveError(f"corrupt {self._kind} stream: {e}") from e
        self.count += count or 0
        if self._max is not None and self.count > self._max:
            raise BudgetError(
                f"archive expands to more than the allowed {self._max} bytes")
        return count or 0
