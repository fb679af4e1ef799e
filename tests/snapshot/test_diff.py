"""Change detection between a stat index and the tree after a step, on real trees."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.snapshot.diff import ChangeKind, LayerDiff, SnapshotMode, diff, snapshot
from core.snapshot.index import StatIndex
from core.snapshot.paths import layer_order_key

IS_ROOT = os.geteuid() == 0
REDO, TIME, FULL = SnapshotMode.REDO, SnapshotMode.TIME, SnapshotMode.FULL


def base_tree(root: Path) -> None:
    for directory in ("etc", "usr/lib/pkg/sub", "var/log", "srv/old/deep", "work"):
        (root / directory).mkdir(parents=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "conf").write_text("a=1\n")
    (root / "usr" / "lib" / "pkg" / "mod.py").write_text("print('x')\n")
    (root / "usr" / "lib" / "pkg" / "sub" / "data").write_bytes(b"\0" * 64)
    (root / "srv" / "old" / "deep" / "f").write_text("old\n")
    (root / "srv" / "old" / "g").write_text("old\n")
    (root / "var" / "log" / "link").symlink_to("../../etc/hosts")
    # what a step changes must land in a later timestamp tick than what the base wrote
    past = time.time() - 100
    for path in root.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)
    time.sleep(0.02)


def step(tmp_path: Path, mutate: Callable[[Path], object], mode: SnapshotMode = REDO,
         ignore: tuple[str, ...] = ()) -> LayerDiff:
    base_tree(tmp_path)
    before = StatIndex.scan(str(tmp_path), ignore=ignore, hash_content=mode is FULL)
    mutate(tmp_path)
    result, after = snapshot(before, mode=mode)
    assert snapshot(after, mode=mode)[0].is_empty  # the new index is the next step's "before"
    return result


def kinds(result: LayerDiff) -> dict[str, str]:
    out = {}
    for change in result.changes:
        link = f"->{change.hardlink_to}" if change.hardlink_to else ""
        out[change.path] = change.kind.value + link
    return out


def test_nothing_changed_gives_an_empty_diff(tmp_path: Path) -> None:
    for mode in SnapshotMode:
        result = step(tmp_path / mode.value, lambda root: None, mode)
        assert result.is_empty and result.parents == () and result.entries() == []


def test_additions_list_new_subtrees_and_parents(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        (root / "usr" / "lib" / "pkg" / "sub" / "new").write_text("n")
        (root / "opt" / "app" / "bin").mkdir(parents=True)
        (root / "opt" / "app" / "bin" / "run").write_text("#!/bin/sh\n")

    result = step(tmp_path, mutate)
    assert kinds(result) == {
        "usr/lib/pkg/sub": "modify", "usr/lib/pkg/sub/new": "add", "opt": "add",
        "opt/app": "add", "opt/app/bin": "add", "opt/app/bin/run": "add"}
    assert result.parents == ("usr", "usr/lib", "usr/lib/pkg")
    names = [name for name, _ in result.entries()]
    assert names == sorted(names, key=layer_order_key)
    assert names[:2] == ["opt", "opt/app"]


def test_content_change_is_a_modification(tmp_path: Path) -> None:
    result = step(tmp_path, lambda root: (root / "etc" / "conf").write_text("a=22\n"))
    assert kinds(result) == {"etc/conf": "modify"}
    assert result.parents == ("etc",)


def test_only_the_topmost_deleted_path_is_reported(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        shutil.rmtree(root / "srv" / "old")
        (root / "etc" / "hosts").unlink()

    result = step(tmp_path, mutate)
    assert kinds(result) == {"srv": "modify", "srv/old": "delete", "etc": "modify",
                             "etc/hosts": "delete"}
    assert [name for name, _ in result.entries()] == ["etc", "etc/.wh.hosts", "srv",
                                                      "srv/.wh.old"]


@pytest.mark.parametrize("mode", list(SnapshotMode))
def test_type_changes_replace_the_node(tmp_path: Path, mode: SnapshotMode) -> None:
    def mutate(root: Path) -> None:
        (root / "etc" / "conf").unlink()
        (root / "etc" / "conf").mkdir()  # file -> dir
        (root / "etc" / "conf" / "inner").write_text("i")
        shutil.rmtree(root / "srv" / "old")
        (root / "srv" / "old").write_text("now a file")  # dir -> file
        (root / "etc" / "hosts").unlink()
        (root / "etc" / "hosts").symlink_to("conf")  # file -> symlink
        (root / "var" / "log" / "link").unlink()
        (root / "var" / "log" / "link").mkdir()  # symlink -> dir

    found = kinds(step(tmp_path, mutate, mode))
    assert {k: v for k, v in found.items() if k in (
        "etc/conf", "etc/conf/inner", "srv/old", "etc/hosts", "var/log/link")} == {
        "etc/conf": "modify", "etc/conf/inner": "add", "srv/old": "modify",
        "etc/hosts": "modify", "var/log/link": "modify"}
    assert not any(path.startswith("srv/old/") for path in found)  # the file hides them


def test_symlink_target_change_is_found_even_with_restored_mtime(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        link = root / "var" / "log" / "link"
        old = os.lstat(link)
        link.unlink()
        link.symlink_to("../../etc/conf")
        os.utime(link, ns=(old.st_atime_ns, old.st_mtime_ns), follow_symlinks=False)

    assert kinds(step(tmp_path / "redo", mutate)) == {"var/log": "modify",
                                                     "var/log/link": "modify"}
    assert kinds(step(tmp_path / "full", mutate, FULL)) == {"var/log/link": "modify"}


def test_mode_changes_are_found_by_redo_and_full_not_time(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        (root / "etc" / "conf").chmod(0o600)
        (root / "usr" / "lib").chmod(0o700)

    expected = {"etc/conf": "modify", "usr/lib": "modify"}
    assert kinds(step(tmp_path / "redo", mutate, REDO)) == expected
    assert kinds(step(tmp_path / "full", mutate, FULL)) == expected
    assert kinds(step(tmp_path / "time", mutate, TIME)) == {}


@pytest.mark.skipif(not IS_ROOT, reason="chown needs root")
def test_owner_changes_are_modifications(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        os.chown(root / "etc" / "conf", 1000, 1000)
        os.chown(root / "var" / "log" / "link", 7, 7, follow_symlinks=False)
        os.chown(root / "srv", 0, 50)

    expected = {"etc/conf": "modify", "var/log/link": "modify", "srv": "modify"}
    assert kinds(step(tmp_path / "redo", mutate, REDO)) == expected
    assert kinds(step(tmp_path / "full", mutate, FULL)) == expected


def test_modes_differ_on_touch_and_on_hidden_rewrites(tmp_path: Path) -> None:
    def touch(root: Path) -> None:
        os.utime(root / "etc" / "conf")  # new mtime, same bytes

    def rewrite_same_size_keep_mtime(root: Path) -> None:
        target = root / "etc" / "conf"
        old = os.stat(target)
        target.write_text("a=2\n")  # same size, new bytes
        os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))

    def replace_with_identical_copy(root: Path) -> None:
        target = root / "etc" / "conf"
        (root / "etc" / "conf.tmp").write_text("a=1\n")
        os.replace(root / "etc" / "conf.tmp", target)

    conf = {"etc/conf": "modify"}
    assert kinds(step(tmp_path / "t-time", touch, TIME)) == conf
    assert kinds(step(tmp_path / "t-redo", touch, REDO)) == conf
    assert kinds(step(tmp_path / "t-full", touch, FULL)) == {}
    assert kinds(step(tmp_path / "r-time", rewrite_same_size_keep_mtime, TIME)) == {}
    assert kinds(step(tmp_path / "r-redo", rewrite_same_size_keep_mtime, REDO)) == conf
    assert kinds(step(tmp_path / "r-full", rewrite_same_size_keep_mtime, FULL)) == conf
    copy_redo = kinds(step(tmp_path / "c-redo", replace_with_identical_copy, REDO))
    assert copy_redo == {"etc": "modify", "etc/conf": "modify"}
    assert kinds(step(tmp_path / "c-full", replace_with_identical_copy, FULL)) == {}


def test_full_mode_without_hashes_falls_back_to_stat(tmp_path: Path) -> None:
    base_tree(tmp_path)
    before = StatIndex.scan(str(tmp_path))  # no hashes
    os.utime(tmp_path / "etc" / "conf")
    after = StatIndex.scan(str(tmp_path), hash_content=True)
    assert kinds(diff(before, after, mode=FULL)) == {"etc/conf": "modify"}


def test_recreated_directory_is_opaque_without_child_whiteouts(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        # moved away rather than deleted, so the new directory cannot reuse the inode number
        os.rename(root / "srv" / "old", root / "work" / "trash")
        (root / "srv" / "old" / "deep").mkdir(parents=True)
        (root / "srv" / "old" / "deep" / "f").write_text("old\n")
        (root / "srv" / "old" / "new").write_text("new\n")

    result = step(tmp_path, mutate, ignore=("work",))
    assert kinds(result) == {"srv": "modify", "srv/old": "opaque", "srv/old/deep": "add",
                             "srv/old/deep/f": "add", "srv/old/new": "add"}
    assert not any(c.kind is ChangeKind.DELETE for c in result.changes)


def test_time_mode_compares_recreated_directories_child_by_child(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        shutil.rmtree(root / "srv" / "old")
        (root / "srv" / "old").mkdir()
        (root / "srv" / "old" / "new").write_text("new\n")

    found = kinds(step(tmp_path, mutate, TIME))
    assert found == {"srv": "modify", "srv/old": "modify", "srv/old/deep": "delete",
                     "srv/old/g": "delete", "srv/old/new": "add"}


def test_new_hardlink_to_an_unchanged_file_links_to_the_lower_path(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        os.link(root / "usr" / "lib" / "pkg" / "mod.py", root / "work" / "mod-link")

    # time mode: the old path's stat is unchanged except its ctime/nlink, so it stays below
    assert kinds(step(tmp_path / "time", mutate, TIME)) == {
        "work": "modify", "work/mod-link": "add->usr/lib/pkg/mod.py"}
    # redo: linking changed the inode's ctime, so the old path is in the layer too
    assert kinds(step(tmp_path / "redo", mutate, REDO)) == {
        "work": "modify", "work/mod-link": "add->usr/lib/pkg/mod.py",
        "usr/lib/pkg/mod.py": "modify"}


def test_new_files_linked_together_link_to_the_first_in_layer_order(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        (root / "work" / "z").write_text("shared")
        os.link(root / "work" / "z", root / "work" / "b")
        os.link(root / "work" / "z", root / "etc" / "y")

    assert kinds(step(tmp_path, mutate)) == {
        "etc": "modify", "etc/y": "add", "work": "modify", "work/b": "add->etc/y",
        "work/z": "add->etc/y"}


def test_ignored_paths_never_show_up(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        (root / "work" / "scratch").write_text("builder state")
        (root / "var" / "log" / "new.log").write_text("log")
        shutil.rmtree(root / "srv" / "old" / "deep")

    result = step(tmp_path, mutate, ignore=("/work", "/srv/old"))
    assert kinds(result) == {"var/log": "modify", "var/log/new.log": "add"}


def test_full_mode_ignores_directory_times(tmp_path: Path) -> None:
    def mutate(root: Path) -> None:
        (root / "var" / "log" / "new.log").write_text("log")
        (root / "var" / "log" / "new.log").unlink()

    assert kinds(step(tmp_path / "full", mutate, FULL)) == {}
    assert kinds(step(tmp_path / "redo", mutate, REDO)) == {"var/log": "modify"}
