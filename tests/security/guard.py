"""Proof that nothing outside the destination changed: sentinels, snapshots and system probes.

A hostile archive aims at three kinds of places, and each is watched:
- the test's own temporary directory around the destination (the work dir, the archive file,
  neighbour directories) — snapshotted whole, the destination left out;
- a sentinel tree at `/tmp/bb-sentinel-*` that the corpus's absolute symlinks, hardlinks and
  whiteouts point at — snapshotted whole, content included;
- real system places (`/etc`, `/root`, `/tmp`): the corpus only ever tries to *create* files
  named with the session marker there (never to change or delete what is there, which would be
  a disaster on a shared machine if an escape worked), so those are checked for marker names,
  plus the `/etc/passwd` inode and content, and every top-level `/root` entry still present.
Deep trees are removed without recursion (Python's recursive walkers stop at ~1,000 levels).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.rootfs import prune

#: every name the corpus tries to plant outside its destination starts with this
MARKER = "bbpwn-" + uuid.uuid4().hex[:8]
PRECIOUS = b"precious sentinel content\n"
_WATCHED_DIRS = (Path("/etc"), Path("/root"), Path("/tmp"))

Snapshot = dict[str, tuple[object, ...]]


def remove_tree(path: Path) -> None:
    """Remove `path` without recursion (10,000-deep trees), one descriptor at a time; `rm -rf`
    when that fails (read-only directories when not running as root)."""
    if not os.path.lexists(path):
        return
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        prune.remove(parent, path.name, path=path.name)
        return
    except OSError:
        pass
    finally:
        os.close(parent)
    subprocess.run(["chmod", "-R", "u+rwx", str(path)], check=False, capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def snapshot(top: Path, *, skip: tuple[Path, ...] = ()) -> Snapshot:
    """Every path under `top` (symlinks not followed, `skip` not entered): type, mode, owner,
    size, mtime, link count, xattrs and content digest or link target."""
    found: Snapshot = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
        for name in [*dirs, *files]:
            path = Path(folder, name)
            if path in skip:
                continue
            found[str(path.relative_to(top))] = _describe(path)
    found["."] = _describe(top)
    return found


def _describe(path: Path) -> tuple[object, ...]:
    st = path.lstat()
    extra: object = None
    if stat.S_ISLNK(st.st_mode):
        extra = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        with path.open("rb") as handle:
            extra = hashlib.file_digest(handle, "sha256").hexdigest()
    try:
        xattrs = tuple(sorted(os.listxattr(path, follow_symlinks=False)))
    except OSError:
        xattrs = ()
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_nlink,
            st.st_ino, xattrs, extra)


@dataclass(frozen=True)
class Sentinel:
    """A tree in `/tmp` that hostile entries point at; `path` is absolute."""

    path: Path

    @classmethod
    def create(cls) -> Sentinel:
        path = Path(tempfile.mkdtemp(prefix="bb-sentinel-", dir="/tmp"))
        (path / "sub/deeper").mkdir(parents=True)
        (path / "empty").mkdir()
        (path / "precious.txt").write_bytes(PRECIOUS)
        (path / "sub/deep.txt").write_bytes(PRECIOUS)
        (path / "sub/deeper/leaf.txt").write_bytes(PRECIOUS)
        (path / "link").symlink_to("precious.txt")
        (path / "ro.txt").write_bytes(PRECIOUS)
        (path / "ro.txt").chmod(0o444)
        os.chmod(path, 0o755)
        return cls(path)

    @property
    def text(self) -> str:
        return str(self.path)

    @property
    def relative(self) -> str:
        """The sentinel's path without the leading `/`."""
        return self.text.lstrip("/")

    def remove(self) -> None:
        remove_tree(self.path)


@dataclass(frozen=True)
class SystemState:
    """What the system probes see."""

    passwd: tuple[object, ...]
    root_entries: frozenset[str]
    marked: tuple[str, ...]

    @classmethod
    def capture(cls) -> SystemState:
        return cls(_describe(Path("/etc/passwd")), frozenset(os.listdir("/root")),
                   tuple(_marked()))


def _marked() -> Iterator[str]:
    for folder in _WATCHED_DIRS:
        for name in os.listdir(folder):
            if name.startswith("bbpwn-"):
                yield str(folder / name)


@dataclass
class Guard:
    """Snapshots taken before an attack, compared after it (`check` raises AssertionError)."""

    area: Path
    skip: tuple[Path, ...]
    sentinel: Sentinel
    area_before: Snapshot | None = None
    sentinel_before: Snapshot | None = None
    system_before: SystemState | None = None

    def arm(self) -> None:
        self.area_before = snapshot(self.area, skip=self.skip)
        self.sentinel_before = snapshot(self.sentinel.path)
        self.system_before = SystemState.capture()

    def check(self) -> None:
        assert self.area_before is not None and self.system_before is not None
        _same("work area", self.area_before, snapshot(self.area, skip=self.skip))
        assert self.sentinel_before is not None
        _same("sentinel", self.sentinel_before, snapshot(self.sentinel.path))
        assert (self.sentinel.path / "precious.txt").read_bytes() == PRECIOUS
        now = SystemState.capture()
        assert now.passwd == self.system_before.passwd, "/etc/passwd changed"
        lost = self.system_before.root_entries - now.root_entries
        assert not lost, f"entries of /root disappeared: {sorted(lost)}"
        planted = set(now.marked) - set(self.system_before.marked)
        assert not planted, f"hostile entries planted outside: {sorted(planted)}"


def _same(what: str, before: Snapshot, after: Snapshot) -> None:
    if before == after:
        return
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    raise AssertionError(f"{what} changed: added {added[:10]}, removed {removed[:10]}, "
                         f"changed {changed[:10]}")
