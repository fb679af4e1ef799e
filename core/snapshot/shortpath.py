"""The short path of the layer writer: small regular files from stat index records.

Most entries of a RUN's layer are small regular files, and their cost is mostly Python's; this
path takes them in as few steps as it can (about 6 µs an entry here, GNU tar's is about 4 µs):
metadata from the record (no second lstat), the file opened relative to its directory (kept
open while its files come, as the diff lists them in layer order), read in one call, and a
header assembled from blocks cached per mode, owner and mtime.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Callable, Mapping

from core.errors import RootfsError

FAST_SIZE = 256 * 1024  # files up to this size are read in one call
_HEAD_FIELDS = struct.Struct("<IIIIqq")  # a StatIndex record's first fields
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_ID = 0o7777777
_MAX_TIME = 0o77777777777

#: (name, mode, uid, gid, mtime, data): appends a plain ustar member
Append = Callable[[bytes, int, int, int, int, bytes], None]


class ShortPath:
    """The common entry in as few steps as Python allows: a small regular file (read in one
    call, opened relative to its directory, which stays open while its files come) with no
    override, no xattr and a plain ustar header (blocks cached per mode, owner and mtime).
    `add` returns False, having written nothing, for anything else: the caller then takes
    the careful path (`LayerTarWriter.add_recorded`). Built by
    `LayerTarWriter.short_path`, which it appends to."""

    def __init__(self, append: Append, *, prefix: str, overrides: Mapping[str, object],
                 epoch: int | None, clamp: bool, check_xattrs: bool) -> None:
        self._append = append
        self._prefix = prefix
        self._overrides = overrides
        self._epoch = epoch
        self._clamp = clamp
        self._check_xattrs = check_xattrs
        self._directory: str | None = None
        self._dir_fd = -1

    def __enter__(self) -> ShortPath:
        return self

    def __exit__(self, *exc: object) -> None:
        self._leave()

    def add(self, path: str, record: bytes) -> bool:
        mode, uid, gid, _, size, mtime_ns = _HEAD_FIELDS.unpack_from(record)
        if mode & 0o170000 != 0o100000 or size > FAST_SIZE or path in self._overrides:
            return False
        name = path.encode(_FS_ENCODING, _FS_ERRORS)
        mtime = mtime_ns // 1_000_000_000
        if self._epoch is not None and (mtime > self._epoch or not self._clamp):
            mtime = self._epoch
        if len(name) > 100 or not name.isascii() or uid > _MAX_ID or gid > _MAX_ID \
                or not 0 <= mtime <= _MAX_TIME:
            return False
        # the file's bytes, read here rather than in a helper: this runs once per entry
        head, _, tail = path.rpartition("/")
        if head != self._directory:
            self._enter(head)
        try:
            fd = os.open(tail, _READ_FLAGS, dir_fd=self._dir_fd)
        except OSError as exc:
            raise RootfsError(f"cannot read {path!r}: {exc.strerror}") from exc
        try:
            if self._check_xattrs and os.listxattr(fd):
                return False
            data = os.read(fd, size)
        except OSError as exc:  # xattrs unsupported, or unreadable: the careful path decides
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                self._check_xattrs = False
            return False
        finally:
            os.close(fd)
        if len(data) != size:  # changed since the scan: the careful path says so
            return False
        self._append(name, mode, uid, gid, mtime, data)
        return True

    def _enter(self, directory: str) -> None:
        self._leave()
        where = self._prefix + directory
        try:
            self._dir_fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise RootfsError(f"cannot read directory {where}: {exc.strerror}") from exc
        self._directory = directory

    def _leave(self) -> None:
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
        self._dir_fd, self._directory = -1, None
