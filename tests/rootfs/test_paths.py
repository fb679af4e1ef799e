"""Contained path resolution: symlinks as a chrooted process sees them, never outside."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.errors import RootfsError
from core.rootfs.paths import Root, clean_relative, printable


@pytest.mark.parametrize(("name", "expected"), [
    ("a/b", "a/b"), ("./a//b/", "a/b"), ("/etc/passwd", "etc/passwd"), ("a/../b", "b"),
    (".", ""), ("./", ""), ("/", ""), ("a/b/../../c", "c"),
])
def test_clean_relative(name: str, expected: str) -> None:
    assert clean_relative(name) == expected


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "./../etc", "/../x"])
def test_clean_relative_refuses_escapes(name: str) -> None:
    with pytest.raises(RootfsError, match="climbs out"):
        clean_relative(name)


def test_clean_relative_strict_refuses_absolute() -> None:
    with pytest.raises(RootfsError, match="absolute"):
        clean_relative("/etc/passwd", allow_absolute=False)


def test_printable_escapes_undecodable_bytes_and_shortens() -> None:
    assert printable(os.fsdecode(b"caf\xe9")) == "caf\\xe9"
    assert len(printable("x" * 5000)) < 210


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("x")
    (root / "lib").symlink_to("usr/lib")
    (root / "abs").symlink_to("/usr")
    (root / "up").symlink_to("../../../..")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "dangling").symlink_to("/nowhere/deeper")
    (root / "file-link").symlink_to("etc/passwd")
    return root


@pytest.mark.parametrize(("path", "expected"), [
    ("lib/x.so", "usr/lib/x.so"),
    ("abs/lib", "usr/lib"),
    ("up/etc", "etc"),
    ("up/../../etc/passwd", "etc/passwd"),
    ("/lib", "usr/lib"),
    ("dangling", "nowhere/deeper"),
    ("file-link", "etc/passwd"),
    ("missing/../etc", "etc"),
    ("lib/..", "usr"),
])
def test_resolve_follows_symlinks_inside_the_root(tree: Path, path: str, expected: str) -> None:
    with Root(tree) as root:
        assert root.resolve(path) == expected


def test_resolve_can_leave_the_last_component(tree: Path) -> None:
    with Root(tree) as root:
        assert root.resolve("lib", follow_final=False) == "lib"
        assert root.resolve("lib/abs", follow_final=False) == "usr/lib/abs"


def test_symlink_loops_are_errors(tree: Path) -> None:
    with Root(tree) as root, pytest.raises(RootfsError, match="too many levels"):
        root.resolve("loop1/x")


def test_long_symlink_chain_is_an_error(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"l{i}").symlink_to(f"l{i + 1}")
    (tmp_path / "l50").mkdir()
    with Root(tmp_path) as root:
        with pytest.raises(RootfsError, match="too many levels"):
            root.resolve("l0/x")
        assert root.resolve("l20/x") == "l50/x"


def test_strict_root_refuses_escaping_links(tree: Path) -> None:
    with Root(tree, clamp=False) as root:
        assert root.resolve("lib/x") == "usr/lib/x"
        with pytest.raises(RootfsError, match="leaves the root"):
            root.resolve("abs/x")
        with pytest.raises(RootfsError, match="out of the root"):
            root.resolve("up/x")


def test_directory_creates_through_symlinks_inside(tree: Path) -> None:
    made: list[str] = []
    with Root(tree) as root:
        found = root.directory("dangling/sub", create=True, on_create=made.append)
        assert found is not None
        assert found[1] == "nowhere/deeper/sub"
    assert (tree / "nowhere/deeper/sub").is_dir()
    assert made == ["nowhere", "nowhere/deeper", "nowhere/deeper/sub"]
    assert not Path("/nowhere").exists()


def test_directory_through_a_file_is_an_error(tree: Path) -> None:
    with Root(tree) as root:
        with pytest.raises(RootfsError, match="not a directory"):
            root.directory("etc/passwd/x", create=True)
        assert root.directory("etc/passwd/x") is None
        assert root.directory("missing") is None


def test_parent_never_follows_the_last_component(tree: Path) -> None:
    with Root(tree) as root:
        found = root.parent("lib")
        assert found is not None
        fd, resolved, base = found
        assert (resolved, base) == ("", "lib")
        assert os.readlink(base, dir_fd=fd) == "usr/lib"


def test_cached_directory_is_dropped_when_entries_are_removed(tree: Path) -> None:
    with Root(tree) as root:
        found = root.directory("lib", create=True)
        assert found is not None and found[1] == "usr/lib"
        top = root.directory("")
        assert top is not None
        root.remove(top[0], "lib", path="lib")
        os.mkdir(tree / "lib")
        again = root.directory("lib", create=True)
        assert again is not None and again[1] == "lib"


def test_cache_walks_up_down_and_across(tmp_path: Path) -> None:
    (tmp_path / "a/b/c/d").mkdir(parents=True)
    (tmp_path / "a/x/y").mkdir(parents=True)
    (tmp_path / "s").symlink_to("a/b")
    order = ("a/b/c/d", "a/b", "a/b/c", "a", "a/b/c/d", "a/x/y", "a/b/c", "s/c", "s",
             "a/x", "s/c/d", "", "a/x/y")
    with Root(tmp_path) as root:
        for path in order:
            found = root.directory(path)
            assert found is not None
            assert found[1] == (path.replace("s", "a/b", 1) if path.startswith("s") else path)
            assert os.path.samestat(os.stat(found[0]), os.stat(tmp_path / path))


def test_open_dir_is_owned_by_the_caller(tree: Path) -> None:
    with Root(tree) as root:
        fd = root.open_dir("lib")
        root.directory("etc")
        assert os.path.samestat(os.fstat(fd), os.stat(tree / "usr/lib"))
        os.close(fd)
        with pytest.raises(RootfsError):
            root.open_dir("etc/passwd")


def test_root_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="cannot open root"):
        Root(tmp_path / "missing")


def test_remove_keeps_what_is_asked_and_survives_depth(tmp_path: Path) -> None:
    deep = tmp_path / "t"
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir(deep)
    cur = os.open(deep, os.O_RDONLY)
    for _ in range(3000):  # deeper than Python's recursion limit
        os.mkdir("d", dir_fd=cur)
        nxt = os.open("d", os.O_RDONLY, dir_fd=cur)
        os.close(cur)
        cur = nxt
    os.close(cur)
    (deep / "keep").mkdir()
    (deep / "keep/yes").write_text("1")
    (deep / "keep/no").write_text("1")
    (deep / "link").symlink_to(tmp_path)
    removed: list[str] = []
    with Root(tmp_path) as root:
        top = root.directory("")
        assert top is not None
        root.remove(top[0], "t", path="t", keep={"t", "t/keep", "t/keep/yes"}.__contains__,
                    removed=removed.append)
    os.close(fd)
    assert sorted(p.name for p in deep.iterdir()) == ["keep"]
    assert [p.name for p in (deep / "keep").iterdir()] == ["yes"]
    assert "t/keep/no" in removed and "t/link" in removed and len(removed) == 3002
    assert (tmp_path / "t").exists()


def test_open_lstat_and_delete_never_follow_the_last_component(tree: Path) -> None:
    with Root(tree) as root:
        fd = root.open("lib/new.so", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"so")
        os.close(fd)
        assert (tree / "usr/lib/new.so").read_bytes() == b"so"
        with pytest.raises(OSError):
            root.open("file-link", os.O_WRONLY | os.O_TRUNC)  # a symlink: refused
        fd = root.open("made/on/demand", os.O_WRONLY | os.O_CREAT, create_parents=True)
        os.close(fd)
        with pytest.raises(RootfsError):
            root.open("nope/x", os.O_RDONLY)
        link = root.lstat("lib")
        assert link is not None and stat.S_ISLNK(link.st_mode)
        assert root.lstat("missing") is None and root.lstat("etc/passwd/x") is None
        assert root.lstat("/") is not None
        assert root.delete("abs") and (tree / "usr").is_dir()  # the link, not its target
        assert root.delete("lib/new.so") and not (tree / "usr/lib/new.so").exists()
        assert root.delete("made") and not (tree / "made").exists()
        assert not root.delete("made") and not root.delete("")
    assert (tree / "etc/passwd").read_text() == "x"
