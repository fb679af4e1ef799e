"""The stat index on real temporary trees."""

from __future__ import annotations

import os
import stat
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest

from core.errors import RootfsError
from core.snapshot import index as index_module
from core.snapshot.index import FileType, StatIndex, decode_record
from core.snapshot.paths import (
    layer_order_key,
    normalize_path,
    opaque_name,
    parent_of,
    whiteout_name,
)

IS_ROOT = os.geteuid() == 0


def make_tree(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "bin").mkdir(mode=0o750)
    (root / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(100))
    (root / "bin" / "tool").chmod(0o4755)
    (root / "bin" / "sh").symlink_to("tool")
    os.link(root / "bin" / "tool", root / "bin" / "tool2")
    os.mkfifo(root / "fifo")


def test_scan_records_every_node_with_its_metadata(tmp_path: Path) -> None:
    make_tree(tmp_path)
    index = StatIndex.scan(str(tmp_path))
    assert sorted(index) == ["bin", "bin/sh", "bin/tool", "bin/tool2", "etc", "etc/passwd",
                             "fifo"]
    tool = index.get("bin/tool")
    disk = os.lstat(tmp_path / "bin" / "tool")
    assert tool is not None
    assert (tool.type, tool.mode, tool.size, tool.nlink) == (FileType.FILE, 0o4755, 104, 2)
    assert (tool.uid, tool.gid, tool.inode, tool.dev) == (disk.st_uid, disk.st_gid,
                                                         disk.st_ino, disk.st_dev)
    assert (tool.mtime_ns, tool.ctime_ns) == (disk.st_mtime_ns, disk.st_ctime_ns)
    assert index.get("bin/sh") == decode_record(index.record("bin/sh") or b"")
    sh = index.get("bin/sh")
    assert sh is not None and sh.type is FileType.SYMLINK and sh.link_target == "tool"
    bin_dir = index.get("bin")
    assert bin_dir is not None and (bin_dir.type, bin_dir.mode) == (FileType.DIR, 0o750)
    fifo = index.get("fifo")
    assert fifo is not None and fifo.type is FileType.FIFO
    assert index.get("missing") is None and "" not in index and len(index) == 7
    assert sorted(index.linked_paths()) == ["bin/tool", "bin/tool2"]


def test_records_list_directories_before_their_subtrees(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "f").touch()
    (tmp_path / "z").mkdir()
    seen: set[str] = set()
    for path, _record in StatIndex.scan(str(tmp_path)).records():
        assert parent_of(path) == "" or parent_of(path) in seen
        seen.add(path)


def test_ignore_hides_paths_and_their_subtrees_only(tmp_path: Path) -> None:
    for name in ("proc/1", "procfs", "work/.bb/state", "work/app", "var/run/x"):
        (tmp_path / name).mkdir(parents=True)
    index = StatIndex.scan(str(tmp_path), ignore=["/proc", "work/.bb/", "./var/run"])
    assert sorted(index) == ["procfs", "var", "work", "work/app"]
    assert index.ignore == frozenset({"proc", "work/.bb", "var/run"})


def test_undecodable_names_are_kept_with_surrogateescape(tmp_path: Path) -> None:
    raw = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    with open(raw, "wb") as handle:
        handle.write(b"x")
    index = StatIndex.scan(str(tmp_path))
    (name,) = list(index)
    assert os.fsencode(name) == b"caf\xe9"


def test_hashing_reuses_hashes_of_unchanged_records(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    first = StatIndex.scan(str(tmp_path), hash_content=True)
    assert first.hashed and first.content_hash("etc/passwd") is not None
    assert first.content_hash("bin") is None and first.content_hash("bin/sh") is None
    calls: list[str] = []
    real = index_module.hash_file

    def counting(path: str) -> bytes:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(index_module, "hash_file", counting)
    again = StatIndex.scan(str(tmp_path), hash_content=True, previous=first)
    assert calls == [] and again.content_hash("etc/passwd") == first.content_hash("etc/passwd")
    (tmp_path / "etc" / "passwd").write_text("changed\n")
    StatIndex.scan(str(tmp_path), hash_content=True, previous=first)
    assert calls == [str(tmp_path / "etc" / "passwd")]
    assert not StatIndex.scan(str(tmp_path)).hashed


def test_unreadable_root_is_a_rootfs_error(tmp_path: Path) -> None:
    with pytest.raises(RootfsError):
        StatIndex.scan(str(tmp_path / "missing"), one_file_system=True)


@pytest.mark.skipif(not IS_ROOT, reason="mounting needs root")
def test_one_file_system_does_not_descend_into_mount_points(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "f").touch()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(tmp_path / "mnt")]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (tmp_path / "mnt" / "inside").touch()
        assert "mnt/inside" in StatIndex.scan(str(tmp_path))
        crossing = StatIndex.scan(str(tmp_path), one_file_system=True)
        assert "mnt" in crossing and "mnt/inside" not in crossing and "keep/f" in crossing
    finally:
        subprocess.run(["umount", str(tmp_path / "mnt")], check=True)


def test_index_stays_compact(tmp_path: Path) -> None:
    for d in range(10):
        directory = f"{tmp_path}/dir{d:02}"
        os.mkdir(directory)
        for f in range(500):
            os.close(os.open(f"{directory}/some-file-name-{f:04}.txt", os.O_CREAT | os.O_WRONLY))
    tracemalloc.start()
    try:
        index = StatIndex.scan(str(tmp_path))
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == 5_010
    assert current / len(index) < 300  # bytes per path: 100,000 paths stay near 25 MB


def test_path_spelling() -> None:
    assert normalize_path("/a//b/") == "a/b" == normalize_path("./a/b")
    assert normalize_path("/") == "" == normalize_path(".")
    assert parent_of("a/b/c") == "a/b" and parent_of("a") == ""
    assert whiteout_name("a/b") == "a/.wh.b" and whiteout_name("b") == ".wh.b"
    assert opaque_name("a") == "a/.wh..wh..opq" and opaque_name("") == ".wh..wh..opq"


def test_layer_order_puts_subtrees_before_siblings_and_opaque_first() -> None:
    names = ["a-b", "a/b", "a", "a/.wh..wh..opq", "a/.wh.c", "a/!", "b", "a/b/c", ".wh..wh..opq"]
    assert sorted(names, key=layer_order_key) == [
        ".wh..wh..opq", "a", "a/.wh..wh..opq", "a/!", "a/.wh.c", "a/b", "a/b/c", "a-b", "b"]
    assert layer_order_key("a/") == layer_order_key("a")


def test_file_type_covers_every_node_kind() -> None:
    assert index_module.file_type(stat.S_IFCHR | 0o600) is FileType.CHAR
    assert index_module.file_type(stat.S_IFBLK) is FileType.BLOCK
    assert index_module.file_type(stat.S_IFSOCK) is FileType.SOCKET


@pytest.mark.parametrize("hashed", [False, True])
def test_refreshed_index_equals_a_full_rescan(tmp_path: Path, hashed: bool) -> None:
    make_tree(tmp_path)
    (tmp_path / "keep" / "sub").mkdir(parents=True)
    (tmp_path / "keep" / "sub" / "old").write_text("old")
    index = StatIndex.scan(str(tmp_path), ignore=["/ignored"], hash_content=hashed)
    time.sleep(0.02)
    # what a COPY step might do: new trees, replaced files, removed files, ignored writes
    (tmp_path / "app" / "lib").mkdir(parents=True)
    (tmp_path / "app" / "lib" / "mod.py").write_text("x = 1\n")
    os.link(tmp_path / "app" / "lib" / "mod.py", tmp_path / "app" / "mod-link.py")
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/bash\n")
    (tmp_path / "keep" / "sub" / "old").unlink()
    (tmp_path / "ignored").mkdir()
    refreshed = index.refreshed(["/app", "etc/passwd", "keep/sub/old", "app/lib", "ignored/x"])
    rescan = StatIndex.scan(str(tmp_path), ignore=["/ignored"], hash_content=hashed)
    assert dict(refreshed.records()) == dict(rescan.records())
    assert sorted(refreshed.linked_paths()) == sorted(rescan.linked_paths())
    assert refreshed.content_hash("app/lib/mod.py") == rescan.content_hash("app/lib/mod.py")
    assert refreshed.content_hash("etc/passwd") == rescan.content_hash("etc/passwd")
    seen: set[str] = set()
    for path, _record in refreshed.records():
        assert parent_of(path) == "" or parent_of(path) in seen
        seen.add(path)
