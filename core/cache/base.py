"""Base layers kept between builds of a warm function (or CLI runs on one machine).

A `BaseLayerCache` is a directory `ROOT/blobs/sha256/HEX` of base layer blobs pulled by earlier
builds, named by digest and bounded by a byte budget: before a blob is added, the least
recently used ones are removed until it fits (a use refreshes a blob's mtime). A blob is written
through a temporary file and renamed only after its digest checked out, so readers never see a
partial blob; a reader re-verifies the digest as it reads, and a blob that fails is removed and
reported (`DigestMismatchError`, retryable: the next build fetches it again).

Builds in several threads or processes may share the directory: writers of the same digest each
rename a whole copy into place, eviction only removes names (a build reading a blob keeps its
open file), entries that vanish under a scan are skipped, and a corrupt blob is removed only if
its name still points at the copy that was read. Concurrent writers may each make room for
their own blob, so the budget can be exceeded by at most one blob per writer at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from core.errors import DigestMismatchError
from core.image.digest import Hasher, digest_hex

log = logging.getLogger(__name__)


class BaseLayerCache:
    """Blobs by digest under `root`, at most `budget` bytes in total."""

    def __init__(self, root: Path, budget: int) -> None:
        self.root = root
        self.budget = budget
        self.blobs = root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def has(self, digest: str, size: int) -> bool:
        try:
            return self.path(digest).stat().st_size == size
        except OSError:
            return False

    def open(self, digest: str, size: int) -> BinaryIO | None:
        """A reader of the cached blob that verifies it as it reads; None when not cached."""
        path = self.path(digest)
        try:
            handle = path.open("rb")
        except OSError:
            return None
        if os.fstat(handle.fileno()).st_size != size:
            handle.close()
            return None
        _touch(path)
        log.debug("base layer %s from the cache %s", digest, self.root)
        return io.BufferedReader(_VerifyingReader(handle, digest, size, path),
                                 buffer_size=1 << 20)

    def writer(self, digest: str, size: int) -> CacheWriter | None:
        """Where a blob being fetched can be kept; None when it cannot fit the budget."""
        if size > self.budget or self.has(digest, size):
            return None
        try:
            self.blobs.mkdir(parents=True, exist_ok=True)
            self.evict(room=size)
            fd, temporary = tempfile.mkstemp(dir=self.blobs, prefix=".part-")
        except OSError as error:
            log.warning("base layer cache %s is not writable: %s", self.root, error)
            return None
        return CacheWriter(os.fdopen(fd, "wb"), Path(temporary), self.path(digest), digest,
                           size)

    def size(self) -> int:
        """Bytes the cached blobs take."""
        return sum(st.st_size for entry in _scan(self.blobs)
                   if not entry.name.startswith(".part-") and (st := _stat(entry)) is not None)

    def evict(self, *, room: int = 0) -> None:
        """Remove least recently used blobs until `room` more bytes fit the budget."""
        entries = []
        for entry in _scan(self.blobs):
            if entry.name.startswith(".part-"):
                if _age(entry) > 3600:  # a writer that died long ago
                    _unlink(Path(entry.path))
                continue
            st = _stat(entry)
            if st is not None:  # None: another build evicted it meanwhile
                entries.append((st.st_mtime, st.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total + room <= self.budget:
                break
            _unlink(path)
            total -= size
            log.info("evicted base layer %s from the cache (%d bytes)", path.name, size)


class CacheWriter:
    """One blob on its way into the cache; `commit` after the last byte, or `abort`."""

    def __init__(self, handle: BinaryIO, temporary: Path, target: Path, digest: str,
                 size: int) -> None:
        self._handle = handle
        self._temporary = temporary
        self._target = target
        self._digest = digest
        self._size = size
        self._hasher = Hasher()
        self.failed = False

    def write(self, data: bytes, /) -> int:
        if not self.failed:
            try:
                self._handle.write(data)
                self._hasher.update(data)
            except OSError as error:  # a full cache never fails the fetch it rides on
                log.warning("cannot keep base layer %s: %s", self._digest, error)
                self.failed = True
        return len(data)

    def commit(self) -> None:
        self._handle.close()
        if self.failed or self._hasher.size != self._size or \
                self._hasher.digest != self._digest:
            _unlink(self._temporary)
            return
        try:  # the part file may have been taken for a dead writer's by another build
            os.replace(self._temporary, self._target)
        except OSError as error:
            log.warning("cannot keep base layer %s: %s", self._digest, error)
            return
        log.info("kept base layer %s (%d bytes) in the cache", self._digest, self._size)

    def abort(self) -> None:
        self._handle.close()
        _unlink(self._temporary)


class _VerifyingReader(io.RawIOBase):
    """Reads a cached blob, checking size and digest when the end is reached."""

    def __init__(self, handle: BinaryIO, digest: str, size: int, path: Path) -> None:
        self._handle = handle
        self._digest = digest
        self._size = size
        self._path = path
        self._hasher = hashlib.sha256()
        self._read = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._handle.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._hasher.update(buffer[:count])
            self._read += count
            return int(count)
        if not self._checked:
            self._checked = True
            digest = "sha256:" + self._hasher.hexdigest()
            if self._read != self._size or digest != self._digest:
                _unlink_if_same(self._path, self._handle)
                raise DigestMismatchError(f"cached base layer {self._digest} is corrupt "
                                          f"(removed; the next build fetches it again)",
                                          retryable=True)
        return 0

    def close(self) -> None:
        self._handle.close()
        super().close()


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def _stat(entry: os.DirEntry[str]) -> os.stat_result | None:
    """The entry's status; None when it is gone (another process evicted it)."""
    try:
        return entry.stat(follow_symlinks=False)
    except OSError:
        return None


def _unlink_if_same(path: Path, handle: BinaryIO) -> None:
    """Remove `path` only if it still names the file `handle` read (a concurrent writer may
    have put a good copy there since)."""
    with contextlib.suppress(OSError):
        here, read = path.stat(), os.fstat(handle.fileno())
        if (here.st_dev, here.st_ino) == (read.st_dev, read.st_ino):
            path.unlink()


def _age(entry: os.DirEntry[str]) -> float:
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
