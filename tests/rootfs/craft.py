"""Test archives made byte by byte: whatever `tarfile` would refuse to extract, we can write.

`Tar` builds a tar stream entry by entry from `tarfile.TarInfo` headers (PAX format, so long and
non-UTF-8 names and xattrs work) plus raw blocks for corrupt cases. `snapshot` records a tree so
a test can prove nothing outside the destination changed.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
from pathlib import Path

import zstandard

BLOCK = 512


class Tar:
    """A tar stream under construction."""

    def __init__(self) -> None:
        self._out = io.BytesIO()

    def add(self, name: str, *, kind: bytes = tarfile.REGTYPE, data: bytes = b"",
            mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: float = 1_600_000_000,
            linkname: str = "", size: int | None = None, devmajor: int = 0,
            devminor: int = 0, pax: dict[str, str] | None = None,
            xattrs: dict[str, bytes] | None = None) -> Tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = len(data) if size is None else size
        info.mode, info.uid, info.gid, info.mtime = mode, uid, gid, mtime
        info.linkname, info.devmajor, info.devminor = linkname, devmajor, devminor
        headers = dict(pax or {})
        for key, value in (xattrs or {}).items():
            headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
        info.pax_headers = headers
        self._out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self._out.write(data)
        self._out.write(b"\0" * (-len(data) % BLOCK))
        return self

    def file(self, name: str, data: bytes = b"", **kw: object) -> Tar:
        return self.add(name, data=data, **kw)  # type: ignore[arg-type]

    def dir(self, name: str, **kw: object) -> Tar:
        kw.setdefault("mode", 0o755)
        return self.add(name, kind=tarfile.DIRTYPE, **kw)  # type: ignore[arg-type]

    def symlink(self, name: str, target: str, **kw: object) -> Tar:
        kw.setdefault("mode", 0o777)
        return self.add(name, kind=tarfile.SYMTYPE, linkname=target, **kw)  # type: ignore[arg-type]

    def hardlink(self, name: str, target: str, **kw: object) -> Tar:
        return self.add(name, kind=tarfile.LNKTYPE, linkname=target, **kw)  # type: ignore[arg-type]

    def raw(self, data: bytes) -> Tar:
        self._out.write(data)
        return self

    def bytes(self, *, end: bool = True) -> bytes:
        return self._out.getvalue() + (b"\0" * 2 * BLOCK if end else b"")


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if kind == "bzip2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    return data


def snapshot(top: Path, *, skip: Path | None = None) -> dict[str, tuple[object, ...]]:
    """Every path under `top` (not following symlinks, not entering `skip`) with its type, mode,
    owner, size, mtime, link target and content digest."""
    found: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(top):
        if skip is not None:
            dirs[:] = [d for d in dirs if Path(folder, d) != skip]
        for name in [*dirs, *files]:
            path = Path(folder, name)
            st = path.lstat()
            extra: object = None
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(top))] = (st.st_mode, st.st_uid, st.st_gid, st.st_size,
                                                 st.st_mtime_ns, st.st_nlink, extra)
    found["."] = (top.lstat().st_mode, top.lstat().st_mtime_ns)
    return found
