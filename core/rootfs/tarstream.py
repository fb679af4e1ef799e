"""Sequential reading of tar archives: ustar, GNU long names and PAX extended headers.

Headers are parsed with `tarfile.TarInfo.frombuf` (checksums, base-256 numbers, ustar
prefixes); everything around them — extension records, payload skipping, limits and errors —
is ours, so memory stays bounded: extension headers are capped at `MAX_EXTENSION` bytes and
payloads are read in caller-sized pieces. Names are decoded as UTF-8 with `surrogateescape`, so
any byte string round-trips through `os` calls. An archive that stops cleanly between entries
ends without error (as Go's reader does); one that stops inside a header or a payload, or has a
corrupt header, raises `ArchiveError`.
"""

from __future__ import annotations

import enum
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

from core.errors import ArchiveError
from core.rootfs.paths import printable

BLOCK = 512
#: largest PAX or GNU long-name header held in memory
MAX_EXTENSION = 1 << 20
_MAX_ID = (1 << 32) - 1


class EntryKind(enum.StrEnum):
    FILE = "file"
    HARDLINK = "hardlink"
    SYMLINK = "symlink"
    CHAR = "char"
    BLOCK = "block"
    DIR = "dir"
    FIFO = "fifo"


_KINDS = {
    tarfile.REGTYPE: EntryKind.FILE, tarfile.AREGTYPE: EntryKind.FILE,
    tarfile.CONTTYPE: EntryKind.FILE, tarfile.LNKTYPE: EntryKind.HARDLINK,
    tarfile.SYMTYPE: EntryKind.SYMLINK, tarfile.CHRTYPE: EntryKind.CHAR,
    tarfile.BLKTYPE: EntryKind.BLOCK, tarfile.DIRTYPE: EntryKind.DIR,
    tarfile.FIFOTYPE: EntryKind.FIFO,
}
_EXTENSIONS = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
               tarfile.GNUTYPE_LONGLINK)


@dataclass(frozen=True)
class TarEntry:
    """One member of an archive, extension headers applied."""

    name: str  # as written (not normalised); undecodable bytes as surrogates
    kind: EntryKind
    size: int = 0  # payload bytes (0 for all but regular files)
    mode: int = 0o644  # permission bits with setuid/setgid/sticky
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()


class TarReader:
    """Entries of a plain tar stream, in order. Iterate once; read each payload with
    `read_payload` before asking for the next entry (what is left is skipped)."""

    def __init__(self, stream: io.BufferedIOBase | io.RawIOBase) -> None:
        self._stream = stream
        self._position = 0
        self._remaining = 0  # payload bytes of the current entry not yet read
        self._padding = 0
        self._current = ""
        self.ended = False  # an end-of-archive block was seen

    @property
    def position(self) -> int:
        """Plain bytes consumed so far."""
        return self._position

    def __iter__(self) -> Iterator[TarEntry]:
        while True:
            self._skip(self._remaining + self._padding, self._current)
            self._remaining = self._padding = 0
            entry = self._next_entry()
            if entry is None:
                return
            self._current = entry.name
            self._remaining = entry.size
            self._padding = -entry.size % BLOCK
            yield entry

    def read_payload(self, buffer: memoryview) -> int:
        """Fill `buffer` with the current entry's payload; 0 once it is all read."""
        wanted = min(len(buffer), self._remaining)
        got = self._read_into(buffer[:wanted])
        if got < wanted:
            missing = self._remaining - got
            raise ArchiveError(
                f"archive ends inside '{printable(self._current)}': {missing} bytes missing")
        self._remaining -= got
        return got

    def read_bytes(self, size: int) -> bytes:
        """The current entry's payload, `size` bytes at most (the caller bounds `size`)."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size and (count := self.read_payload(view[got:])):
            got += count
        return bytes(buffer[:got])

    def drain(self) -> int:
        """Read and drop whatever follows the archive; return how many bytes that was."""
        start = self._position
        scratch = memoryview(bytearray(1 << 16))
        while self._read_into(scratch):
            pass
        return self._position - start

    def _next_entry(self) -> TarEntry | None:
        overrides: dict[str, str | bytes] = {}
        xattrs: list[tuple[str, bytes]] = []
        while True:
            info = self._header()
            if info is None:
                if overrides or xattrs:
                    raise ArchiveError("archive ends right after an extended header")
                return None
            if info.type not in _EXTENSIONS:
                return _entry(info, overrides, xattrs)
            data = self._extension(info)
            if info.type == tarfile.XHDTYPE:
                _pax(data, overrides, xattrs)
            elif info.type == tarfile.GNUTYPE_LONGNAME:
                overrides["path"] = data.split(b"\0", 1)[0]
            elif info.type == tarfile.GNUTYPE_LONGLINK:
                overrides["linkpath"] = data.split(b"\0", 1)[0]
            # global PAX headers (XGLTYPE) are read and ignored, as containerd does

    def _header(self) -> tarfile.TarInfo | None:
        offset = self._position
        block = memoryview(bytearray(BLOCK))
        got = self._read_into(block)
        if got == 0:
            return None
        if got < BLOCK:
            raise ArchiveError(f"archive ends inside the header at offset {offset}")
        if not any(block):
            self.ended = True
            return None
        try:
            return tarfile.TarInfo.frombuf(bytes(block), "utf-8", "surrogateescape")
        except tarfile.TarError as e:
            what = "not a tar archive" if offset == 0 else f"corrupt header at offset {offset}"
            raise ArchiveError(f"{what}: {e}") from e

    def _extension(self, info: tarfile.TarInfo) -> bytes:
        if not 0 <= info.size <= MAX_EXTENSION:
            raise ArchiveError(f"extended header of {info.size} bytes is larger than the "
                               f"{MAX_EXTENSION}-byte limit")
        data = memoryview(bytearray(info.size))
        if self._read_into(data) < info.size:
            raise ArchiveError("archive ends inside an extended header")
        self._skip(-info.size % BLOCK, "extended header")
        return bytes(data)

    def _read_into(self, buffer: memoryview) -> int:
        got = 0
        while got < len(buffer):
            count = self._stream.readinto(buffer[got:])
            if not count:
                break
            got += count
        self._position += got
        return got

    def _skip(self, count: int, what: str) -> None:
        scratch = memoryview(bytearray(min(count, 1 << 16)))
        while count:
            got = self._read_into(scratch[: min(count, len(scratch))])
            if not got:
                raise ArchiveError(
                    f"archive ends inside '{printable(what)}': {count} bytes missing")
            count -= got


def _pax(data: bytes, overrides: dict[str, str | bytes],
         xattrs: list[tuple[str, bytes]]) -> None:
    """Parse PAX records (`LEN KEY=VALUE\\n`) into `overrides` and `xattrs`."""
    pos = 0
    while pos < len(data) and data[pos]:
        space = data.find(b" ", pos, pos + 20)
        length = int(data[pos:space]) if space > pos and data[pos:space].isdigit() else 0
        record = data[space + 1: pos + length]
        if length <= 0 or pos + length > len(data) or not record.endswith(b"\n") \
                or b"=" not in record:
            raise ArchiveError(f"malformed PAX record at byte {pos} of an extended header")
        key_bytes, _, value = record[:-1].partition(b"=")
        key = key_bytes.decode("utf-8", "surrogateescape")
        if key.startswith("SCHILY.xattr."):
            xattrs.append((key.removeprefix("SCHILY.xattr."), value))
        elif key.startswith("GNU.sparse."):
            raise ArchiveError("sparse files are not supported")
        else:
            overrides[key] = value
        pos += length


def _entry(info: tarfile.TarInfo, overrides: dict[str, str | bytes],
           xattrs: list[tuple[str, bytes]]) -> TarEntry:
    kind = _KINDS.get(info.type)
    if kind is None:
        what = "sparse file" if info.type == tarfile.GNUTYPE_SPARSE else f"type {info.type!r}"
        raise ArchiveError(f"'{printable(info.name)}': unsupported tar entry ({what})")
    entry = TarEntry(
        name=info.name, kind=kind, size=info.size if kind is EntryKind.FILE else 0,
        mode=info.mode & 0o7777, uid=info.uid, gid=info.gid, mtime_ns=int(info.mtime) * 10**9,
        linkname=info.linkname, devmajor=info.devmajor, devminor=info.devminor,
        xattrs=tuple(xattrs))
    entry = _apply(entry, overrides)
    if not 0 <= entry.uid <= _MAX_ID or not 0 <= entry.gid <= _MAX_ID or entry.size < 0:
        raise ArchiveError(f"'{printable(entry.name)}': size, uid or gid out of range")
    return entry


def _apply(entry: TarEntry, overrides: dict[str, str | bytes]) -> TarEntry:
    """Apply PAX / GNU overrides of header fields."""
    text = {k: (v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v)
            for k, v in overrides.items()}
    try:
        if "path" in text:
            entry = replace(entry, name=text["path"])
        if "linkpath" in text:
            entry = replace(entry, linkname=text["linkpath"])
        if "size" in text and entry.kind is EntryKind.FILE:
            entry = replace(entry, size=int(text["size"]))
        if "uid" in text:
            entry = replace(entry, uid=int(text["uid"]))
        if "gid" in text:
            entry = replace(entry, gid=int(text["gid"]))
        if "mtime" in text:
            entry = replace(entry, mtime_ns=int(Decimal(text["mtime"]).scaleb(9)))
    except (ValueError, InvalidOperation, ArithmeticError) as e:
        raise ArchiveError(f"'{printable(entry.name)}': malformed PAX value: {e}") from e
    return entry
