"""A small grammar of tar members for fuzzing: names, types and link targets drawn from pieces
that matter to containment (`..`, `.`, empty components, absolute paths, whiteouts, names that
are already symlinks, the sentinel's absolute path), so random archives hit the interesting
cases far more often than random bytes do.

`decode` turns fuzzer bytes into entries through a tiny deterministic reader, so the same bytes
always give the same archive (atheris) and hypothesis can draw the same shapes (`entries`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.security import tarbytes as tb

COMPONENTS = ("a", "b", "lnk", "..", ".", "", ".wh.a", ".wh..wh..opq", ".wh..", "d" * 40,
              "caf\udce9", "sub")
KINDS = (tb.FILE, tb.DIR, tb.SYMLINK, tb.HARDLINK, tb.FIFO, tb.CHAR, tb.FILE, tb.DIR)


@dataclass
class Bytes:
    """Reads small numbers from fuzzer input; past the end everything is zero."""

    data: bytes
    pos: int = 0

    def byte(self) -> int:
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value

    def pick(self, options: tuple[str, ...] | tuple[bytes, ...]) -> object:
        return options[self.byte() % len(options)]

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def path(reader: Bytes, sentinel: str) -> str:
    """A name of 1-4 components; sometimes absolute, sometimes inside the sentinel."""
    head = reader.byte()
    parts = [str(reader.pick(COMPONENTS)) for _ in range(1 + head % 4)]
    text = "/".join(parts)
    if head & 0x10:
        return "/" + text
    if head & 0x20:
        return sentinel + "/" + text
    return text


def entry(reader: Bytes, sentinel: str) -> tb.Entry:
    kind = reader.pick(KINDS)
    assert isinstance(kind, bytes)
    name = path(reader, sentinel)
    if kind in (tb.SYMLINK, tb.HARDLINK):
        target = sentinel if reader.byte() % 5 == 0 else path(reader, sentinel)
        return tb.Entry(name, kind, linkname=target)
    if kind == tb.CHAR:
        return tb.special(name, tb.CHAR, 1, 3)
    if kind == tb.FILE:
        return tb.file(name, bytes([reader.byte()]) * (reader.byte() % 8), mode=0o644)
    return tb.Entry(name, kind, mode=0o755 if kind == tb.DIR else 0o644)


def decode(data: bytes, sentinel: str) -> bytes:
    """Fuzzer bytes to a tar archive of up to 24 grammar entries."""
    reader = Bytes(data)
    entries: list[tb.Entry] = []
    while not reader.done and len(entries) < 24:
        entries.append(entry(reader, sentinel))
    return tb.archive(entries)
