"""Work dirs of dead builds go, those of live builds stay; trees of any depth are removed.

A "build" here is a real process holding a `BuildLock` (the engine's, through `WorkDir.create`
or `Workspace.create`), killed with SIGKILL when the test wants it dead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.build.workdir import LOCK_NAME, WorkDir, WorkDirError, remove_stale, remove_tree
from core.service.workspace import Workspace
from tests.resources.conftest import REPO, mounted_tmpfs

_HOLDER = textwrap.dedent("""
    import os, sys, tempfile
    from pathlib import Path
    os.environ["TMPDIR"] = sys.argv[2]
    tempfile.tempdir = None
    if sys.argv[1] == "workdir":
        made = __import__("core.build.workdir", fromlist=["WorkDir"]).WorkDir.create(
            Path(sys.argv[3]) if len(sys.argv) > 3 else None)
        root = made.root
    else:
        made = __import__("core.service.workspace", fromlist=["Workspace"]).Workspace.create(
            Path(sys.argv[2]), "build-1")
        root = made.root
    (root / "tmp" / "payload").write_bytes(b"x" * 4096)
    print(root, flush=True)
    sys.stdin.read()
""")


class Holder:
    """A process that made a work dir (or workspace) and holds it until killed."""

    def __init__(self, kind: str, tmpdir: Path, given: Path | None = None) -> None:
        args = [sys.executable, "-c", _HOLDER, kind, str(tmpdir)]
        if given is not None:
            args.append(str(given))
        self.process = subprocess.Popen(args, cwd=REPO, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line, "the holder did not start"
        self.root = Path(line)

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=30)


@pytest.fixture()
def holders() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for holder in made:
        if holder.process.poll() is None:
            holder.kill()


def test_dead_builds_dirs_go_live_and_kept_ones_stay(tmp_path: Path, holders: list[Holder],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    live, dead = Holder("workdir", tmp_path), Holder("workdir", tmp_path)
    holders += [live, dead]
    kept = tmp_path / "bucketbuild-kept"  # --cleanup=false: no lock file
    (kept / "tmp").mkdir(parents=True)
    other = tmp_path / "unrelated"
    other.mkdir()
    (other / LOCK_NAME).write_text("1\n")  # not a name this sweep looks at
    dead.kill()
    assert (dead.root / LOCK_NAME).exists()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    mine = WorkDir.create(None)  # sweeps the temp dir first
    try:
        assert not dead.root.exists()
        assert (live.root / "tmp" / "payload").exists()
        assert kept.exists() and other.exists()
    finally:
        mine.cleanup()
        mine.release()
    assert not mine.root.exists()


def test_a_given_work_dir_in_use_is_refused(tmp_path: Path, holders: list[Holder]) -> None:
    given = tmp_path / "work"
    live = Holder("workdir", tmp_path, given)
    holders.append(live)
    with pytest.raises(WorkDirError, match=rf"in use by another build \(pid {live.process.pid}\)"):
        WorkDir.create(given)
    assert (given / "tmp" / "payload").exists()  # the live build's files are untouched
    live.kill()
    reused = WorkDir.create(given)  # the build died: its leftovers go, the dir is reused
    assert not (given / "tmp" / "payload").exists()
    assert (given / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    reused.cleanup()
    reused.release()
    assert not (given / LOCK_NAME).exists()
    assert sorted(os.listdir(given)) == ["cache"]


def test_service_workspaces_of_dead_builds_go(tmp_path: Path, holders: list[Holder]) -> None:
    root = tmp_path / "work-root"
    live, dead = Holder("workspace", root), Holder("workspace", root)
    holders += [live, dead]
    dead.kill()
    workspace = Workspace.create(root, "build-2")
    try:
        assert not dead.root.exists()
        assert (live.root / "tmp" / "payload").exists()
    finally:
        workspace.remove()
    assert not workspace.root.exists()
    assert sorted(p.name for p in root.iterdir()) == [live.root.name]


def deep_tree(root: Path, depth: int) -> Path:
    """`root/d/d/.../d` (`depth` levels), made through descriptors (paths get too long)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            os.symlink("/etc", "etc-link", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("file", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as out:
            out.write("bottom\n")
    finally:
        os.close(fd)
    return root


def test_trees_of_any_depth_are_removed(tmp_path: Path) -> None:
    tree = deep_tree(tmp_path / "tree", 2500)  # shutil.rmtree: RecursionError
    os.chmod(tree, 0o555)
    assert remove_tree(tree)
    assert not tree.exists()
    assert os.path.exists("/etc/passwd")  # links were removed, not followed


def test_a_tree_with_a_mount_in_it_is_left_alone(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "mnt").mkdir(parents=True)
    with mounted_tmpfs(tree / "mnt", 1):
        (tree / "mnt" / "host-file").write_text("must survive\n")
        assert not remove_tree(tree)
        with pytest.raises(WorkDirError, match="is mounted in it"):
            remove_tree(tree, strict=True)
        assert (tree / "mnt" / "host-file").read_text() == "must survive\n"
    assert remove_tree(tree)


def test_sweep_removes_nothing_without_a_lock_file(tmp_path: Path) -> None:
    (tmp_path / "bucketbuild-x" / "tmp").mkdir(parents=True)
    assert remove_stale(tmp_path, prefixes=("bucketbuild-",)) == []
    assert (tmp_path / "bucketbuild-x" / "tmp").is_dir()
