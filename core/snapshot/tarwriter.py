"""A deterministic layer tar writer that streams to any binary sink.

What goes into every entry is fixed by the tree, never by the clock or the host:
- entries come in layer order (`paths.layer_order_key`: parents first, each directory's subtree
  before its next sibling); the writer refuses anything out of order or twice;
- POSIX ustar headers (`magic "ustar\\0"`, version `00`) plus PAX extended headers where a field
  does not fit or xattrs exist; readable by GNU tar, Python's tarfile, Go's archive/tar (umoci,
  containers-storage, containerd);
- uid, gid, permission bits and mtime (whole seconds, rounded down) from `lstat`, or from a
  caller's `MetadataOverride` when the disk cannot hold the truth (non-root builds); uname and
  gname are empty; directories are named with a trailing `/`, as Docker writes them;
- xattrs: `security.capability` only by default (what Docker, containerd and kaniko keep);
- a whiteout is an empty regular file `DIR/.wh.NAME` with mode 0, uid 0, gid 0, as containerd
  writes it; its mtime is 0 (containerd >= 2.0) or the epoch when one is given (BuildKit with
  SOURCE_DATE_EPOCH). An opaque marker `DIR/.wh..wh..opq` is written the same way;
- with `epoch` the mtime of every entry newer than it is clamped to it (BuildKit's
  `rewrite-timestamp` with SOURCE_DATE_EPOCH); with `clamp_mtime=False` every mtime is set to it
  (kaniko's `--reproducible` uses epoch 0 this way).
Sockets are skipped, as Docker and containerd do. The archive ends with two zero blocks.
Memory: one output buffer (`flush_size`) and one read chunk; file contents are streamed.
"""

from __future__ import annotations

import enum
import os
import stat
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from core.errors import RootfsError
from core.snapshot import fileattrs
from core.snapshot import tarheader as th
from core.snapshot.diff import ChangeKind, LayerDiff
from core.snapshot.index import FileType, StatIndex, link_target_bytes, record_fields
from core.snapshot.paths import encode_path, layer_order_key, opaque_name, whiteout_name
from core.snapshot.shortpath import ShortPath

_READ_CHUNK = 1 << 20
_ZEROS = bytes(th.BLOCK)
_NO_PARTS = (b"", b"", b"", 0)
_TYPEFLAGS = {stat.S_IFREG: th.REGULAR, stat.S_IFDIR: th.DIRECTORY, stat.S_IFLNK: th.SYMLINK,
              stat.S_IFCHR: th.CHAR, stat.S_IFBLK: th.BLOCKDEV, stat.S_IFIFO: th.FIFO}
_DISK_TYPES = {th.REGULAR: FileType.FILE, th.DIRECTORY: FileType.DIR, th.SYMLINK: FileType.SYMLINK,
               th.CHAR: FileType.CHAR, th.BLOCKDEV: FileType.BLOCK, th.FIFO: FileType.FIFO}


# (st_mode, uid, gid, nlink, size, mtime_ns): the layout of a StatIndex record's first fields
_Meta = tuple[int, ...]


class BinarySink(Protocol):
    """Anything with `write(bytes)`: a file opened "wb", a `LayerWriter`, a socket wrapper."""

    def write(self, data: bytes, /) -> object: ...


class XattrPolicy(enum.Enum):
    """Which extended attributes are read from disk."""

    NONE = "none"
    CAPABILITY = "capability"  # security.capability only
    ALL = "all"


@dataclass(frozen=True)
class MetadataOverride:
    """What to write instead of the disk's metadata for one path (None keeps the disk's).

    `type` may turn a placeholder on disk into a CHAR or BLOCK device (with `devmajor`,
    `devminor`) or a FIFO; `xattrs`, when given, replaces the xattrs read from disk.
    """

    uid: int | None = None
    gid: int | None = None
    mode: int | None = None  # permission bits, 0o7777 at most
    type: FileType | None = None
    devmajor: int = 0
    devminor: int = 0
    xattrs: Mapping[str, bytes] | None = None


@dataclass(frozen=True)
class TarSummary:
    """What a finished layer tar holds."""

    entries: int
    size: int  # bytes written, end-of-archive blocks included


class LayerTarWriter:
    """Write one layer: `add*` calls in layer order, then `close()`."""

    def __init__(self, sink: BinarySink, *, root: str,
                 overrides: Mapping[str, MetadataOverride] | None = None,
                 epoch: int | None = None, clamp_mtime: bool = True,
                 xattrs: XattrPolicy = XattrPolicy.CAPABILITY,
                 flush_size: int = 256 * 1024) -> None:
        self._sink = sink
        self._prefix = os.path.abspath(root).rstrip("/") + "/"
        self._overrides = overrides or {}
        self._epoch = epoch
        self._clamp = clamp_mtime
        self._xattrs = xattrs
        self._flush_size = flush_size
        self._buf = bytearray()
        self._plain = th.PlainHeaders()
        self._recent: tuple[tuple[int, ...], tuple[bytes, bytes, bytes, int]] = ((), _NO_PARTS)
        self._last_key: bytes | None = None
        self._entries = 0
        self._written = 0
        self._closed = False

    def add(self, path: str, *, source: str | None = None, hardlink_to: str | None = None,
            ) -> None:
        """Add `path` as it is on disk (at `source`, default ROOT/path): a directory, file,
        symlink, device or FIFO; with `hardlink_to`, a hardlink to that earlier layer path."""
        src = source if source is not None else self._prefix + path
        try:
            st = os.lstat(src)
        except OSError as exc:
            raise RootfsError(f"cannot add {path!r} to the layer: {exc.strerror}") from exc
        meta = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size, st.st_mtime_ns)
        self._add(path, src, meta, None, hardlink_to, st.st_rdev)

    def add_recorded(self, path: str, record: bytes, *, hardlink_to: str | None = None,
                     ) -> None:
        """Like `add` for ROOT/path, with the metadata of a `StatIndex` record taken after the
        step instead of a new lstat (the tree must not have changed since; a file that shrank
        is still an error). Devices are still stat'ed for their numbers."""
        target = link_target_bytes(record)
        self._add(path, self._prefix + path, record_fields(record), target or None,
                  hardlink_to, None)

    def add_whiteout(self, path: str) -> None:
        """Record that `path` (and everything under it) is deleted from the lower layers."""
        self._add_marker(whiteout_name(path))

    def add_opaque(self, directory: str) -> None:
        """Record that lower layers' content under `directory` is hidden (after the directory's
        own entry, before its children)."""
        self._add_marker(opaque_name(directory))

    def close(self) -> TarSummary:
        """Write the end-of-archive blocks and flush; the sink is left open."""
        if not self._closed:
            self._closed = True
            self._buf += th.END_OF_ARCHIVE
            self._flush()
        return TarSummary(entries=self._entries, size=self._written)

    def _add(self, path: str, src: str, meta: _Meta, link_target: bytes | None,
             hardlink_to: str | None, rdev: int | None) -> None:
        fmt = stat.S_IFMT(meta[0])
        if fmt == stat.S_IFSOCK:
            return
        name = encode_path(path)
        self._check_order(name, name.replace(b"/", b"\0"))
        override = self._overrides.get(path) if self._overrides else None
        if hardlink_to is not None:
            self._emit(meta, override, name, th.HARDLINK, encode_path(hardlink_to), src, None)
        elif fmt == stat.S_IFREG and (override is None or override.type in (None, FileType.FILE)):
            self._emit_file(meta, override, name, src)
        elif fmt == stat.S_IFDIR:
            self._emit(meta, override, name + b"/", th.DIRECTORY, b"", src, None)
        elif fmt == stat.S_IFLNK:
            target = link_target if link_target is not None else fileattrs.read_link(src, path)
            self._emit(meta, override, name, th.SYMLINK, target, src, None)
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            rdev = rdev if rdev is not None else fileattrs.rdev(src, path)
            device = (os.major(rdev), os.minor(rdev))
            self._emit(meta, override, name, _TYPEFLAGS[fmt], b"", src, device)
        else:
            self._emit(meta, override, name, _TYPEFLAGS.get(fmt, th.REGULAR), b"", src, None)

    def _check_order(self, name: bytes, key: bytes) -> None:
        if self._closed:
            raise RootfsError("layer tar already closed")
        if not name or name.startswith(b"/") or (b".." in name and b".." in name.split(b"/")):
            raise RootfsError(f"not a layer path: {os.fsdecode(name)!r}")
        if self._last_key is not None and key <= self._last_key:
            raise RootfsError(f"layer entry {os.fsdecode(name)!r} is out of order or repeated")
        self._last_key = key
        self._entries += 1

    def _add_marker(self, name: str) -> None:
        encoded = encode_path(name)
        self._check_order(encoded, layer_order_key(name))
        mtime = self._epoch if self._epoch is not None else 0
        self._buf += th.header(encoded, mode=0, uid=0, gid=0, size=0, mtime=mtime,
                               typeflag=th.REGULAR)
        self._maybe_flush()

    def _mtime(self, mtime_ns: int) -> int:
        mtime = mtime_ns // 1_000_000_000
        epoch = self._epoch
        if epoch is not None and (mtime > epoch or not self._clamp):
            return epoch
        return mtime

    def _emit(self, meta: _Meta, override: MetadataOverride | None, name: bytes,
              typeflag: bytes, linkname: bytes, src: str,
              device: tuple[int, int] | None) -> None:
        """A member without content: everything but regular files."""
        mode, uid, gid = meta[0], meta[1], meta[2]
        xattrs = fileattrs.NO_XATTRS
        if self._xattrs is XattrPolicy.ALL and typeflag not in (th.SYMLINK, th.HARDLINK):
            xattrs = fileattrs.read_xattrs(src, all_names=True)
        if override is not None:
            uid, gid, mode, xattrs = _apply(override, uid, gid, mode, xattrs)
            if override.type is not None and typeflag != th.HARDLINK:
                typeflag, device = _override_type(override, name, typeflag, device)
        mtime = self._mtime(meta[5])
        if (not linkname and device is None and not xattrs
                and th.PlainHeaders.fits(name, uid, gid, 0, mtime)):
            self._buf += self._plain.encode(name, mode, uid, gid, 0, mtime, typeflag)
        else:
            self._buf += th.header(name, mode=mode, uid=uid, gid=gid, size=0, mtime=mtime,
                                   typeflag=typeflag, linkname=linkname, device=device,
                                   xattrs=xattrs)
        self._maybe_flush()

    def _emit_file(self, meta: _Meta, override: MetadataOverride | None, name: bytes,
                   src: str) -> None:
        mode, uid, gid, size = meta[0], meta[1], meta[2], meta[4]
        try:
            fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise RootfsError(f"cannot read {src}: {exc.strerror}") from exc
        try:
            xattrs = fileattrs.NO_XATTRS
            if self._xattrs is not XattrPolicy.NONE:
                xattrs = fileattrs.read_xattrs(fd, all_names=self._xattrs is XattrPolicy.ALL)
            if override is not None:
                uid, gid, mode, xattrs = _apply(override, uid, gid, mode, xattrs)
            small = size <= _READ_CHUNK
            data = os.read(fd, size) if small else b""
            if small and len(data) != size:
                data = fileattrs.read_exact(fd, size, src, start=data)
            mtime = self._mtime(meta[5])
            buf = self._buf
            if not xattrs and th.PlainHeaders.fits(name, uid, gid, size, mtime):
                buf += self._plain.encode(name, mode, uid, gid, size, mtime, th.REGULAR)
            else:
                buf += th.header(name, mode=mode, uid=uid, gid=gid, size=size, mtime=mtime,
                                 typeflag=th.REGULAR, xattrs=xattrs)
            if not small:
                self._stream(fd, size, src)
        finally:
            os.close(fd)
        buf += data
        buf += _ZEROS[: -size % th.BLOCK]
        if len(buf) >= self._flush_size:
            self._flush()

    def short_path(self) -> ShortPath:
        """The short path for small regular files from index records (see `write_diff`)."""
        return ShortPath(self._append_plain, prefix=self._prefix, overrides=self._overrides,
                         epoch=self._epoch, clamp=self._clamp,
                         check_xattrs=self._xattrs is not XattrPolicy.NONE)

    def _append_plain(self, name: bytes, mode: int, uid: int, gid: int, mtime: int,
                      data: bytes) -> None:
        """A regular file whose header is plain ustar (see `ShortPath`)."""
        key = name.replace(b"/", b"\0")
        if self._closed or (self._last_key is not None and key <= self._last_key):
            self._check_order(name, key)  # raises the right error
        self._last_key = key
        self._entries += 1
        size = len(data)
        combination = (mode, uid, gid, mtime)  # neighbours mostly share it
        if combination != self._recent[0]:
            self._recent = (combination, self._plain.parts(mode, uid, gid, mtime, th.REGULAR))
        ids, mtime_field, tail, base = self._recent[1]
        size_field = b"%011o\0" % size
        checksum = base + (zlib.adler32(name, 0) & 0xFFFF) + (
            zlib.adler32(size_field, 0) & 0xFFFF)
        buf = self._buf
        buf += b"".join((name.ljust(100, b"\0"), ids, size_field, mtime_field,
                         b"%06o\0 " % checksum, tail, data, _ZEROS[: -size % th.BLOCK]))
        if len(buf) >= self._flush_size:
            self._flush()

    def _stream(self, fd: int, size: int, src: str) -> None:
        self._flush()
        remaining = size
        while remaining:
            chunk = fileattrs.read_exact(fd, min(remaining, _READ_CHUNK), src)
            self._sink.write(chunk)
            self._written += len(chunk)
            remaining -= len(chunk)

    def _maybe_flush(self) -> None:
        if len(self._buf) >= self._flush_size:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._sink.write(data)
            self._written += len(data)


def write_diff(writer: LayerTarWriter, diff: LayerDiff, *, index: StatIndex | None = None,
               ) -> None:
    """Add every entry of a snapshot diff: changes, whiteouts, opaque markers and parents.
    Metadata comes from the records of the "after" index the diff was made from (`index`, by
    default the diff's own) instead of a second lstat per path. Small regular files, the bulk
    of most layers, take a short path (`core.snapshot.shortpath`)."""
    index = index if index is not None else diff.index
    record = index.mapping().get if index is not None else _no_record
    deleted, opaque = ChangeKind.DELETE, ChangeKind.OPAQUE
    entries = diff.entries() if diff.parents else ((None, c) for c in diff.changes)
    with writer.short_path() as short:
        for name, change in entries:
            if change is None:
                assert name is not None
                path, hardlink_to = name, None
            elif change.kind is deleted:
                writer.add_whiteout(change.path)
                continue
            else:
                path, hardlink_to = change.path, change.hardlink_to
            known = record(path)
            if known is None:
                writer.add(path, hardlink_to=hardlink_to)
            elif hardlink_to is not None or not short.add(path, known):
                writer.add_recorded(path, known, hardlink_to=hardlink_to)
            if change is not None and change.kind is opaque:
                writer.add_opaque(path)


def _no_record(path: str) -> bytes | None:
    return None


def _apply(override: MetadataOverride, uid: int, gid: int, mode: int,
           xattrs: Mapping[str, bytes]) -> tuple[int, int, int, Mapping[str, bytes]]:
    return (override.uid if override.uid is not None else uid,
            override.gid if override.gid is not None else gid,
            override.mode if override.mode is not None else mode,
            override.xattrs if override.xattrs is not None else xattrs)


def _override_type(override: MetadataOverride, name: bytes, typeflag: bytes,
                   device: tuple[int, int] | None) -> tuple[bytes, tuple[int, int] | None]:
    """Apply an override's node type: a device or FIFO may replace whatever placeholder the
    disk has; any other type must be what the disk has."""
    wanted = override.type
    if wanted in (FileType.CHAR, FileType.BLOCK):
        flag = th.CHAR if wanted is FileType.CHAR else th.BLOCKDEV
        return flag, (override.devmajor, override.devminor)
    if wanted is FileType.FIFO:
        return th.FIFO, None
    if wanted is not None and _DISK_TYPES.get(typeflag) is not wanted:
        raise RootfsError(f"cannot write {os.fsdecode(name)!r} as a {wanted.value}: "
                          f"it is not one on disk")
    return typeflag, device
