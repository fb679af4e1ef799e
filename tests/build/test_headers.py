"""The header index: a tree known from layer headers, with OCI whiteout semantics."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from core.build.headers import HeaderIndex
from core.errors import RootfsError
from core.rootfs.tarstream import EntryKind


def _layer(*members: tuple[str, str, bytes | str]) -> io.BytesIO:
    """(name, kind, data or link target) -> a gzip layer."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                archive.addfile(info)
            elif kind in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = str(data)
                archive.addfile(info)
            else:
                payload = data if isinstance(data, bytes) else data.encode()
                info.size, info.uid = len(payload), 7
                archive.addfile(info, io.BytesIO(payload))
    return io.BytesIO(gzip.compress(buffer.getvalue()))


def test_layers_whiteouts_and_opaque_directories() -> None:
    index = HeaderIndex()
    index.apply_layer(_layer(("etc/", "dir", b""), ("etc/passwd", "file", "root:x:0:0::/:\n"),
                             ("a/b/c", "file", b"c"), ("a/keep", "file", b"k"),
                             ("d/old", "file", b"o"), ("real/", "dir", b""),
                             ("link", "sym", "/real")))
    assert index.nodes["a"].kind is EntryKind.DIR  # implied parent
    assert index.nodes["etc"].mode == 0o750
    index.apply_layer(_layer(("a/.wh.b", "file", b""), ("d/", "dir", b""),
                             ("d/.wh..wh..opq", "file", b""), ("d/new", "file", b"n"),
                             ("etc/hard", "hard", "etc/passwd")))
    assert "a/b" not in index.nodes and "a/b/c" not in index.nodes
    assert "a/keep" in index.nodes
    assert sorted(p for p in index.nodes if p.startswith("d/")) == ["d/new"]
    assert index.nodes["etc/hard"].uid == 7
    assert index.text("etc/passwd").startswith("root:x:0:0")
    assert index.resolve("link/x") == "real/x"
    assert index.resolve("link", follow_final=False) == "link"
    assert index.resolve("../../link/../etc") == "etc"


def test_a_file_replacing_a_directory_hides_its_content() -> None:
    index = HeaderIndex()
    index.apply_layer(_layer(("x/y", "file", b"y")))
    index.apply_layer(_layer(("x", "file", b"now a file")))
    assert "x/y" not in index.nodes and index.nodes["x"].kind is EntryKind.FILE


def test_symlink_loops_are_refused() -> None:
    index = HeaderIndex()
    index.apply_layer(_layer(("a", "sym", "b"), ("b", "sym", "a")))
    with pytest.raises(RootfsError, match="symbolic links"):
        index.resolve("a/x")
