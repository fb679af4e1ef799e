"""The streaming tar reader: extension headers, limits, and every way an archive can be broken."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from core.errors import ArchiveError
from core.rootfs.tarstream import MAX_EXTENSION, EntryKind, TarEntry, TarReader
from tests.rootfs.craft import BLOCK, Tar


def read_all(data: bytes) -> list[tuple[TarEntry, bytes]]:
    reader = TarReader(io.BytesIO(data))
    out = []
    buffer = memoryview(bytearray(7))  # odd size: payloads come in several pieces
    for entry in reader:
        chunks = []
        while count := reader.read_payload(buffer):
            chunks.append(bytes(buffer[:count]))
        out.append((entry, b"".join(chunks)))
    return out


def test_all_kinds_and_fields() -> None:
    data = (Tar().file("f", b"hello", mode=0o4755, uid=7, gid=8, mtime=1234)
            .dir("d/").symlink("s", "/abs/target").hardlink("h", "f")
            .add("c", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)
            .add("b", kind=tarfile.BLKTYPE, devmajor=8, devminor=1)
            .add("p", kind=tarfile.FIFOTYPE).add("c7", kind=tarfile.CONTTYPE, data=b"x")
            .bytes())
    entries = read_all(data)
    kinds = [(e.name, e.kind) for e, _ in entries]
    assert kinds == [("f", EntryKind.FILE), ("d", EntryKind.DIR), ("s", EntryKind.SYMLINK),
                     ("h", EntryKind.HARDLINK), ("c", EntryKind.CHAR), ("b", EntryKind.BLOCK),
                     ("p", EntryKind.FIFO), ("c7", EntryKind.FILE)]
    first, payload = entries[0]
    assert (first.mode, first.uid, first.gid, first.mtime_ns) == (0o4755, 7, 8, 1234 * 10**9)
    assert payload == b"hello"
    assert entries[2][0].linkname == "/abs/target"
    assert (entries[4][0].devmajor, entries[4][0].devminor) == (1, 3)


def test_pax_long_names_xattrs_and_fractional_mtime() -> None:
    name = "a/" * 3000 + "file"
    raw = os.fsdecode(b"bad-\xff-name")
    data = (Tar().file(name, b"x", pax={"mtime": "1700000000.123456789"})
            .file(raw, b"y", xattrs={"security.capability": b"\x01\x00\xff\xfe",
                                     "user.note": b"hi"})
            .symlink("l", "t" * 5000).bytes())
    entries = read_all(data)
    assert entries[0][0].name == name
    assert entries[0][0].mtime_ns == 1700000000123456789
    assert os.fsencode(entries[1][0].name) == b"bad-\xff-name"
    assert dict(entries[1][0].xattrs) == {"security.capability": b"\x01\x00\xff\xfe",
                                          "user.note": b"hi"}
    assert entries[2][0].linkname == "t" * 5000


def test_gnu_long_names_from_gnu_tar(tmp_path: Path) -> None:
    src = tmp_path / "src"
    long_dir = src / ("d" * 120) / ("e" * 120)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 150)).write_text("content")
    (src / "link").symlink_to("t" * 200)
    archive = tmp_path / "a.tar"
    subprocess.run(["tar", "--format=gnu", "-cf", str(archive), "-C", str(src), "."],
                   check=True)
    entries = {e.name.removeprefix("./"): (e, p) for e, p in read_all(archive.read_bytes())}
    key = f"{'d' * 120}/{'e' * 120}/{'f' * 150}"
    assert entries[key][1] == b"content"
    assert entries["link"][0].linkname == "t" * 200


def test_base256_numbers() -> None:
    info = tarfile.TarInfo("big")
    info.uid = 3_000_000  # does not fit 7 octal digits: GNU base-256
    buf = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    [(entry, _)] = read_all(buf + b"\0" * 1024)
    assert entry.uid == 3_000_000


def test_clean_end_without_end_blocks_and_empty_stream() -> None:
    assert [e.name for e, _ in read_all(Tar().file("a", b"1").bytes(end=False))] == ["a"]
    assert read_all(b"") == []


def test_position_and_drain() -> None:
    data = Tar().file("a", b"1").bytes() + b"trailing garbage"
    reader = TarReader(io.BytesIO(data))
    assert [e.name for e in reader] == ["a"]
    assert reader.ended
    assert reader.drain() == 512 + len(b"trailing garbage")
    assert reader.position == len(data)


@pytest.mark.parametrize(("data", "message"), [
    (b"this is not a tar file" * 40, "not a tar archive"),
    (Tar().file("a", b"12345").bytes(end=False)[:700], "archive ends inside 'a'"),
    (Tar().file("a", b"1").bytes(end=False) + b"\1" * 100, "ends inside the header"),
    (Tar().file("a", b"1").bytes(end=False) + b"\1" * 512, "corrupt header at offset 1024"),
    (Tar().file("huge", size=10**12).bytes(end=False), "archive ends inside 'huge'"),
    (Tar().add("x", kind=b"V").bytes(), "unsupported tar entry"),
    (Tar().add("s", kind=tarfile.GNUTYPE_SPARSE).bytes(), "sparse file"),
    (Tar().file("s", pax={"GNU.sparse.major": "1"}).bytes(), "sparse files"),
    (Tar().file("m", pax={"mtime": "soon"}).bytes(), "malformed PAX value"),
    (Tar().file("u", pax={"uid": "-5"}).bytes(), "out of range"),
])
def test_broken_archives(data: bytes, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        read_all(data)


def test_corrupt_checksum_is_not_silently_the_end() -> None:
    good = Tar().file("a", b"1").file("b", b"2").bytes()
    broken = bytearray(good)
    broken[1024 + 148] ^= 0x01  # checksum field of the second header
    with pytest.raises(ArchiveError, match="corrupt header"):
        read_all(bytes(broken))


def test_malformed_pax_records() -> None:
    header = tarfile.TarInfo("././@PaxHeader")
    body = b"99 path=x\n"
    header.type, header.size = tarfile.XHDTYPE, len(body)
    data = header.tobuf(tarfile.USTAR_FORMAT) + body + b"\0" * (BLOCK - len(body))
    data += Tar().file("a").bytes()
    with pytest.raises(ArchiveError, match="malformed PAX record"):
        read_all(data)


def test_extension_headers_are_capped() -> None:
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, MAX_EXTENSION + 1
    with pytest.raises(ArchiveError, match="larger than"):
        read_all(header.tobuf(tarfile.USTAR_FORMAT) + b"a" * 1024)


def test_global_pax_headers_are_skipped() -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "x" * 600}) as tar:
        info = tarfile.TarInfo("f")
        tar.addfile(info, io.BytesIO(b""))
    assert [e.name for e, _ in read_all(data.getvalue())] == ["f"]


def test_unread_payload_is_skipped() -> None:
    data = Tar().file("a", b"x" * 5000).file("b", b"y").bytes()
    reader = TarReader(io.BytesIO(data))
    names = [e.name for e in reader]
    assert names == ["a", "b"]
