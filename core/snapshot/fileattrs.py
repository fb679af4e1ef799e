"""What the layer writer reads from disk beyond `lstat`: xattrs, device numbers, link targets,
and file contents read exactly (a file that shrank while it was written is an error)."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from types import MappingProxyType

from core.errors import RootfsError

CAPABILITY = "security.capability"
NO_XATTRS: Mapping[str, bytes] = MappingProxyType({})


def read_xattrs(target: int | str, *, all_names: bool) -> Mapping[str, bytes]:
    """security.capability (or every xattr) of an open file or a path; listing first is
    cheaper than a failing get on the many files that have none."""
    follow = isinstance(target, int)  # an open file descriptor: nothing to follow
    try:
        names = os.listxattr(target, follow_symlinks=follow)
        if not names:
            return NO_XATTRS
        wanted = sorted(names) if all_names else [n for n in names if n == CAPABILITY]
        return {n: os.getxattr(target, n, follow_symlinks=follow) for n in wanted}
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return NO_XATTRS
        raise RootfsError(f"cannot read xattrs of {target}: {exc.strerror}") from exc


def read_exact(fd: int, size: int, src: str, *, start: bytes = b"") -> bytes:
    parts = [start] if start else []
    got = len(start)
    while got < size:
        more = os.read(fd, size - got)
        if not more:
            raise RootfsError(f"{src} shrank while it was being written to the layer")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def rdev(src: str, path: str) -> int:
    try:
        return os.lstat(src).st_rdev
    except OSError as exc:
        raise RootfsError(f"cannot add {path!r} to the layer: {exc.strerror}") from exc


def read_link(src: str, path: str) -> bytes:
    try:
        return os.fsencode(os.readlink(src))
    except OSError as exc:
        raise RootfsError(f"cannot read symlink {path!r}: {exc.strerror}") from exc
