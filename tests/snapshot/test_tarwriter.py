"""The layer tar writer, checked with tools we did not write: GNU tar and Python's tarfile."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from core.errors import RootfsError
from core.snapshot import tarheader as th
from core.snapshot.diff import whole_tree
from core.snapshot.index import FileType, StatIndex
from core.snapshot.tarwriter import LayerTarWriter, MetadataOverride, XattrPolicy, write_diff
from tests.snapshot.trees import CAPABILITY, IS_ROOT, LONG_DIRS, describe, rich_tree


def write_layer(root: Path, out: Path, *, use_index: bool = True, **options: object) -> bytes:
    with open(out, "wb") as sink:
        writer = LayerTarWriter(sink, root=str(root), **options)  # type: ignore[arg-type]
        index = StatIndex.scan(str(root))
        write_diff(writer, whole_tree(index), index=index if use_index else None)
        summary = writer.close()
    data = out.read_bytes()
    assert summary.size == len(data) and len(data) % 512 == 0
    assert data[-1024:] == bytes(1024)
    return data


def gnu_extract(layer: Path, dest: Path) -> None:
    dest.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--same-owner", "--numeric-owner",
                    "-xpf", str(layer), "-C", str(dest)], check=True)


@pytest.mark.parametrize("use_index", [True, False])
def test_gnu_tar_extracts_exactly_the_tree(tmp_path: Path, use_index: bool) -> None:
    rich_tree(tmp_path / "src")
    write_layer(tmp_path / "src", tmp_path / "layer.tar", use_index=use_index,
                xattrs=XattrPolicy.ALL)
    gnu_extract(tmp_path / "layer.tar", tmp_path / "out")
    expected = describe(tmp_path / "src")
    assert describe(tmp_path / "out") == expected
    assert len(expected) >= 20


def test_gnu_tar_lists_types_owners_and_links(tmp_path: Path) -> None:
    rich_tree(tmp_path / "src")
    write_layer(tmp_path / "src", tmp_path / "layer.tar")
    listing = subprocess.run(["tar", "--numeric-owner", "-tvf", str(tmp_path / "layer.tar")],
                             check=True, capture_output=True, text=True,
                             errors="surrogateescape").stdout.splitlines()
    lines = {line.split()[-1] if " -> " not in line and " link to " not in line
             else line.split()[5]: line for line in listing}
    assert lines["suid"].startswith("-rwsr-xr-x 0/0")
    assert lines["tmp/"].startswith("drwxrwxrwt") and lines["shared/"].startswith("drwxr-sr-x")
    assert "rel-link -> etc/size-1" in lines["rel-link"]
    assert "long-link -> " + "x" * 200 in lines["long-link"]
    assert "shared/hard-a link to etc/hard-b" in lines["shared/hard-a"]  # first in layer order
    assert lines["fifo"].startswith("prw-r--r--")
    assert any(line.endswith("/" + "f" * 150) for line in listing)
    if IS_ROOT:
        assert lines["null"].startswith("crw-rw-rw- 0/0") and " 1,3 " in lines["null"]
        assert lines["loop0"].startswith("brw-rw----") and " 7,0 " in lines["loop0"]
        assert lines["etc/size-511"].startswith("-rw-r--r-- 3000000/3000001")
        assert lines["rel-link"].startswith("lrwxrwxrwx 42/43")


def test_python_tarfile_reads_names_pax_fields_and_content(tmp_path: Path) -> None:
    rich_tree(tmp_path / "src")
    data = write_layer(tmp_path / "src", tmp_path / "layer.tar", xattrs=XattrPolicy.ALL)
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as archive:
        members = {m.name: m for m in archive.getmembers()}
        deep = f"{LONG_DIRS}/{'f' * 150}"
        assert members[deep].isfile() and "path" in members[deep].pax_headers
        assert archive.extractfile(members[deep]).read() == b"deep"  # type: ignore[union-attr]
        assert members["café/日本語.txt"].size == len("unicode")
        assert os.fsencode(members["latin1-\udce9"].name) == b"latin1-\xe9"
        assert members["long-link"].linkname == "x" * 200
        assert members["etc/hard-b"].isfile()
        link = members["shared/hard-a"]
        assert link.islnk() and link.linkname == "etc/hard-b"
        assert members["etc/size-1"].pax_headers["SCHILY.xattr.user.note"] == "hello"
        assert all(m.uname == "" and m.gname == "" for m in members.values())
        big = archive.extractfile(members["big"])
        assert big is not None and big.read() == (tmp_path / "src" / "big").read_bytes()


def test_capability_is_the_only_xattr_by_default(tmp_path: Path) -> None:
    rich_tree(tmp_path / "src")
    data = write_layer(tmp_path / "src", tmp_path / "layer.tar")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        headers = {m.name: m.pax_headers for m in archive.getmembers()}
    assert not any(k.startswith("SCHILY.xattr.user") for h in headers.values() for k in h)
    if IS_ROOT:
        value = headers["suid"]["SCHILY.xattr.security.capability"]
        assert value.encode("utf-8", "surrogateescape") == CAPABILITY
    no_xattrs = write_layer(tmp_path / "src", tmp_path / "none.tar", xattrs=XattrPolicy.NONE)
    assert b"SCHILY" not in no_xattrs


def test_two_writes_of_one_tree_are_identical(tmp_path: Path) -> None:
    rich_tree(tmp_path / "src")
    first = write_layer(tmp_path / "src", tmp_path / "1.tar")
    second = write_layer(tmp_path / "src", tmp_path / "2.tar")
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    # metadata from the index's records or from a fresh lstat: the same bytes
    assert write_layer(tmp_path / "src", tmp_path / "3.tar", use_index=False) == first


def test_epoch_makes_digests_independent_of_mtimes(tmp_path: Path) -> None:
    rich_tree(tmp_path / "src")
    epoch = 1_600_000_000
    clamped = write_layer(tmp_path / "src", tmp_path / "1.tar", epoch=epoch)
    later = time.time() + 1000
    for path in (tmp_path / "src").rglob("*"):
        os.utime(path, (later, later), follow_symlinks=False)
    assert write_layer(tmp_path / "src", tmp_path / "2.tar", epoch=epoch) == clamped
    assert write_layer(tmp_path / "src", tmp_path / "3.tar") != clamped
    with tarfile.open(tmp_path / "2.tar") as archive:
        assert {m.mtime for m in archive.getmembers()} == {epoch}


def test_clamp_keeps_older_times_and_set_overrides_them(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "old").write_text("o")
    (tmp_path / "src" / "new").write_text("n")
    os.utime(tmp_path / "src" / "old", (500, 500))
    os.utime(tmp_path / "src" / "new", (5000, 5000))
    write_layer(tmp_path / "src", tmp_path / "clamp.tar", epoch=1000)
    write_layer(tmp_path / "src", tmp_path / "set.tar", epoch=1000, clamp_mtime=False)
    with tarfile.open(tmp_path / "clamp.tar") as archive:
        assert {m.name: m.mtime for m in archive.getmembers()} == {"old": 500, "new": 1000}
    with tarfile.open(tmp_path / "set.tar") as archive:
        assert {m.name: m.mtime for m in archive.getmembers()} == {"old": 1000, "new": 1000}


def test_whiteouts_and_opaque_markers_are_empty_mode_0_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    sink = io.BytesIO()
    writer = LayerTarWriter(sink, root=str(tmp_path), epoch=77)
    writer.add_whiteout("top")
    writer.add("d")
    writer.add_opaque("d")
    writer.add_whiteout("d/gone")
    writer.close()
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == [".wh.top", "d", "d/.wh..wh..opq", "d/.wh.gone"]
    for marker in members[:1] + members[2:]:
        assert (marker.type, marker.mode, marker.uid, marker.gid, marker.size, marker.mtime) == (
            tarfile.REGTYPE, 0, 0, 0, 0, 77)
    plain = io.BytesIO()
    writer = LayerTarWriter(plain, root=str(tmp_path))
    writer.add_whiteout("x")
    writer.close()
    with tarfile.open(fileobj=io.BytesIO(plain.getvalue())) as archive:
        assert archive.getmembers()[0].mtime == 0


def test_out_of_order_repeated_and_bad_paths_are_refused(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    writer = LayerTarWriter(io.BytesIO(), root=str(tmp_path))
    writer.add("b")
    with pytest.raises(RootfsError, match="out of order"):
        writer.add("a")
    with pytest.raises(RootfsError, match="out of order"):
        writer.add("b")
    for bad in ("", "/b", "b/../../etc"):
        with pytest.raises(RootfsError):
            writer.add(bad)
    with pytest.raises(RootfsError, match="cannot add"):
        writer.add("c")
    writer.close()
    with pytest.raises(RootfsError, match="closed"):
        writer.add_whiteout("z")


def test_overrides_replace_disk_metadata(tmp_path: Path) -> None:
    for name in ("dev-null", "pipe", "app", "plain"):
        (tmp_path / name).write_text("" if name != "app" else "binary")
    (tmp_path / "d").mkdir()
    overrides = {
        "app": MetadataOverride(uid=1000, gid=1001, mode=0o4750,
                                xattrs={"security.capability": CAPABILITY}),
        "dev-null": MetadataOverride(type=FileType.CHAR, devmajor=1, devminor=3, mode=0o666),
        "pipe": MetadataOverride(type=FileType.FIFO),
        "d": MetadataOverride(type=FileType.DIR, uid=5),
        "plain": MetadataOverride(type=FileType.FILE, gid=9),
    }
    sink = io.BytesIO()
    writer = LayerTarWriter(sink, root=str(tmp_path), overrides=overrides)
    for name in ("app", "d", "dev-null", "pipe", "plain"):
        writer.add(name)
    writer.close()
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as archive:
        m = {x.name: x for x in archive.getmembers()}
    assert (m["app"].uid, m["app"].gid, m["app"].mode, m["app"].size) == (1000, 1001, 0o4750, 6)
    assert "SCHILY.xattr.security.capability" in m["app"].pax_headers
    assert m["dev-null"].ischr() and (m["dev-null"].devmajor, m["dev-null"].devminor) == (1, 3)
    assert m["dev-null"].mode == 0o666 and m["dev-null"].size == 0
    assert m["pipe"].isfifo() and m["d"].isdir() and m["d"].uid == 5
    assert m["plain"].isfile() and m["plain"].gid == 9
    writer = LayerTarWriter(io.BytesIO(), root=str(tmp_path),
                            overrides={"plain": MetadataOverride(type=FileType.DIR)})
    with pytest.raises(RootfsError, match="not one on disk"):
        writer.add("plain")


def test_source_lets_a_layer_take_files_from_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "app.py").write_text("print(1)\n")
    sink = io.BytesIO()
    writer = LayerTarWriter(sink, root=str(tmp_path / "unused"))
    writer.add("srv/app.py", source=str(tmp_path / "context" / "app.py"))
    writer.close()
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as archive:
        member = archive.getmember("srv/app.py")
        assert archive.extractfile(member).read() == b"print(1)\n"  # type: ignore[union-attr]


def test_sockets_are_skipped(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        sink = io.BytesIO()
        writer = LayerTarWriter(sink, root=str(tmp_path))
        writer.add("sock")
        assert writer.close().entries == 0


def test_content_is_streamed_not_held(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(os.urandom(5 * 1024 * 1024))
    sizes: list[int] = []

    class Sink:
        def write(self, data: bytes) -> int:
            sizes.append(len(data))
            return len(data)

    writer = LayerTarWriter(Sink(), root=str(tmp_path), flush_size=64 * 1024)
    writer.add("big")
    writer.close()
    assert sum(sizes) == 512 + 5 * 1024 * 1024 + 1024 and max(sizes) <= 1024 * 1024


def test_a_file_that_shrinks_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_bytes(b"12345")
    real_lstat = os.lstat

    def lying_lstat(path: str) -> os.stat_result:
        st = real_lstat(path)
        fields = list(st)
        fields[stat.ST_SIZE] = 10
        return os.stat_result(fields)

    monkeypatch.setattr(os, "lstat", lying_lstat)
    writer = LayerTarWriter(io.BytesIO(), root=str(tmp_path))
    with pytest.raises(RootfsError, match="shrank"):
        writer.add("f")


def test_values_beyond_ustar_fields_go_to_pax_records() -> None:
    huge = 9 * 1024**3
    block = th.header(b"big", mode=0o644, uid=0, gid=0, size=huge, mtime=0, typeflag=th.REGULAR)
    assert b" size=%d\n" % huge in block and len(block) % 512 == 0
    member = th.header(b"t", mode=0o600, uid=2**21, gid=2**30, size=0, mtime=-86400,
                       typeflag=th.REGULAR)
    late = th.header(b"u", mode=0o600, uid=0, gid=0, size=0, mtime=8**11, typeflag=th.REGULAR)
    data = member + late + th.END_OF_ARCHIVE
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        t, u = archive.getmembers()
    assert (t.uid, t.gid, t.mtime, u.mtime) == (2**21, 2**30, -86400, 8**11)


def test_fast_headers_match_the_general_encoder() -> None:
    plain = th.PlainHeaders()
    for name, mode, uid, gid, size, mtime, flag in [
            (b"a/b", 0o100644, 0, 0, 123, 1_700_000_000, th.REGULAR),
            (b"dir/", 0o42775, 1000, 100, 0, 5, th.DIRECTORY),
            (b"x" * 100, 0o4755, 2097151, 2097151, 8**11 - 1, 8**11 - 1, th.REGULAR)]:
        assert th.PlainHeaders.fits(name, uid, gid, size, mtime)
        assert plain.encode(name, mode, uid, gid, size, mtime, flag) == th.header(
            name, mode=mode, uid=uid, gid=gid, size=size, mtime=mtime, typeflag=flag)
    assert not th.PlainHeaders.fits(b"x" * 101, 0, 0, 0, 0)
    assert not th.PlainHeaders.fits("é".encode(), 0, 0, 0, 0)
