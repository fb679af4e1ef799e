"""Tar streams written header by header, so a test can say exactly what a hostile archive holds.

`tarfile` refuses to write much of what an attacker sends (or quietly fixes it), so the headers
are encoded here by hand: ustar fields, the `prefix` field, GNU long names, PAX records (local
and global), base-256 numbers and raw garbage. Names and link targets are `bytes` or `str`
(encoded as UTF-8 with `surrogateescape`, so `os.fsdecode` names round-trip).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import zstandard

BLOCK = 512
END = b"\0" * (2 * BLOCK)

# type flags
FILE = b"0"
HARDLINK = b"1"
SYMLINK = b"2"
CHAR = b"3"
BLOCKDEV = b"4"
DIR = b"5"
FIFO = b"6"
CONTIGUOUS = b"7"
PAX = b"x"
PAX_GLOBAL = b"g"
GNU_LONGNAME = b"L"
GNU_LONGLINK = b"K"
GNU_SPARSE = b"S"

Name = bytes | str


def raw_name(name: Name) -> bytes:
    return name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")


def octal(value: int, width: int) -> bytes:
    """A NUL-terminated octal field, or base-256 when the value does not fit (GNU)."""
    digits = width - 1
    if 0 <= value < 8**digits:
        return b"%0*o\0" % (digits, value)
    return base256(value, width)


def base256(value: int, width: int) -> bytes:
    """The GNU base-256 encoding: high bit of the first byte set, two's complement."""
    encoded = (value % (1 << (8 * width - 1))).to_bytes(width, "big")
    return bytes([encoded[0] | 0x80]) + encoded[1:]


def pax_records(records: dict[str, bytes | str]) -> bytes:
    """`LEN KEY=VALUE\\n` records; LEN counts the whole record, itself included."""
    out = bytearray()
    for key, value in records.items():
        body = b" " + key.encode() + b"=" + raw_name(value) + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length = len(str(length)) + len(body)
        out += str(length).encode() + body
    return bytes(out)


def header(name: Name, *, kind: bytes = FILE, size: int = 0, mode: int = 0o644, uid: int = 0,
           gid: int = 0, mtime: int = 1_600_000_000, linkname: Name = b"",
           devmajor: int = 0, devminor: int = 0, prefix: Name = b"",
           size_field: bytes | None = None, checksum_delta: int = 0,
           magic: bytes = b"ustar\x0000", raw_fields: dict[int, bytes] | None = None) -> bytes:
    """One 512-byte ustar header. `size_field` replaces the encoded size verbatim,
    `raw_fields` any bytes at the given offsets; `checksum_delta` corrupts the checksum."""
    block = bytearray(BLOCK)

    def put(offset: int, width: int, data: bytes) -> None:
        block[offset:offset + width] = data[:width].ljust(width, b"\0")

    put(0, 100, raw_name(name))
    put(100, 8, octal(mode, 8))
    put(108, 8, octal(uid, 8))
    put(116, 8, octal(gid, 8))
    put(124, 12, size_field if size_field is not None else octal(size, 12))
    put(136, 12, octal(mtime, 12))
    block[148:156] = b" " * 8
    put(156, 1, kind)
    put(157, 100, raw_name(linkname))
    put(257, 8, magic)
    put(265, 32, b"root")
    put(297, 32, b"root")
    put(329, 8, octal(devmajor, 8))
    put(337, 8, octal(devminor, 8))
    put(345, 155, raw_name(prefix))
    for offset, data in (raw_fields or {}).items():
        block[offset:offset + len(data)] = data
    checksum = sum(block) + checksum_delta
    block[148:156] = b"%06o\0 " % (checksum % 8**6)
    return bytes(block)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


@dataclass
class Entry:
    """One archive member as written. Long or non-ASCII names go in a PAX header unless
    `gnu_long` asks for GNU long-name records; `pax` adds (or overrides) PAX records."""

    name: Name
    kind: bytes = FILE
    data: bytes = b""
    linkname: Name = b""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    devmajor: int = 0
    devminor: int = 0
    declared_size: int | None = None  # the header's size when it differs from len(data)
    size_field: bytes | None = None
    pax: dict[str, bytes | str] = field(default_factory=dict)
    xattrs: dict[str, bytes] = field(default_factory=dict)
    gnu_long: bool = False
    prefix: Name = b""
    checksum_delta: int = 0

    def encode(self) -> bytes:
        name, link = raw_name(self.name), raw_name(self.linkname)
        records: dict[str, bytes | str] = {}
        out = bytearray()
        if self.gnu_long:
            for value, kind in ((name, GNU_LONGNAME), (link, GNU_LONGLINK)):
                if len(value) >= 100:
                    out += header(b"././@LongLink", kind=kind, size=len(value) + 1)
                    out += padded(value + b"\0")
        else:
            if len(name) >= 100 or not name.isascii():
                records["path"] = name
            if len(link) >= 100 or not link.isascii():
                records["linkpath"] = link
        records.update({f"SCHILY.xattr.{k}": v for k, v in self.xattrs.items()})
        records.update(self.pax)
        if records:
            body = pax_records(records)
            out += header(b"PaxHeaders/" + name[-80:], kind=PAX, size=len(body))
            out += padded(body)
        size = len(self.data) if self.declared_size is None else self.declared_size
        mode = self.mode if self.mode is not None else _default_mode(self.kind)
        out += header(name[:100], kind=self.kind, size=size, mode=mode, uid=self.uid,
                      gid=self.gid, mtime=self.mtime, linkname=link[:100],
                      devmajor=self.devmajor, devminor=self.devminor, prefix=self.prefix,
                      size_field=self.size_field, checksum_delta=self.checksum_delta)
        out += padded(self.data)
        return bytes(out)


def _default_mode(kind: bytes) -> int:
    return {DIR: 0o755, SYMLINK: 0o777}.get(kind, 0o644)


def file(name: Name, data: bytes = b"", **kw: object) -> Entry:
    return Entry(name, FILE, data, **kw)  # type: ignore[arg-type]


def directory(name: Name, **kw: object) -> Entry:
    return Entry(name, DIR, **kw)  # type: ignore[arg-type]


def symlink(name: Name, target: Name, **kw: object) -> Entry:
    return Entry(name, SYMLINK, linkname=target, **kw)  # type: ignore[arg-type]


def hardlink(name: Name, target: Name, **kw: object) -> Entry:
    return Entry(name, HARDLINK, linkname=target, **kw)  # type: ignore[arg-type]


def special(name: Name, kind: bytes, major: int = 0, minor: int = 0) -> Entry:
    return Entry(name, kind, devmajor=major, devminor=minor)


def archive(entries: Iterable[Entry | bytes], *, end: bool = True) -> bytes:
    """Entries (or raw bytes, written as they are) in order, then the end-of-archive blocks."""
    out = bytearray()
    for entry in entries:
        out += entry if isinstance(entry, bytes) else entry.encode()
    return bytes(out + (END if end else b""))


def gzipped(data: bytes, *, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def zstded(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


_UNIT = 16 << 20


def gzip_zeros(count: int) -> bytes:
    """Gzip members that inflate to `count` zero bytes (a multiple of 16 MiB): one member
    compressed once and repeated, so a 4 GiB bomb costs milliseconds to make."""
    assert count % _UNIT == 0
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = deflate.compress(b"\0" * _UNIT) + deflate.flush()
    return member * (count // _UNIT)


def zstd_zeros(count: int) -> bytes:
    """zstd frames that decompress to `count` zero bytes (a multiple of 16 MiB)."""
    assert count % _UNIT == 0
    frame = zstandard.ZstdCompressor(level=19).compress(b"\0" * _UNIT)
    return frame * (count // _UNIT)
