"""Empty mount points made in a root for one step, and their removal afterwards.

Paths are resolved inside their base directory as a process chrooted there would resolve them
(`core.rootfs.paths.Root`), so a symlink in an image cannot make us create or remove anything
outside it. Each placeholder is recorded with its inode, its ctime and its parent's times;
`remove_all` takes away only what is still ours (an empty directory with the same inode, an
empty file with the same inode and ctime) and puts the parent's times back.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import RootfsError, SandboxError
from core.rootfs.paths import Root, clean_relative, printable

log = logging.getLogger(__name__)

Kind = Literal["dir", "file"]


@dataclass(frozen=True)
class Placeholder:
    """One directory or file made for the step only."""

    base: Path  # the directory `path` is relative to (a root, or a bind mount's source)
    path: str
    kind: Kind
    identity: tuple[int, int]  # inode and ctime_ns when made: a replaced file differs
    parent_times: tuple[int, int]  # atime_ns, mtime_ns of the parent before we made this


class Placeholders:
    """The placeholders made for one step (working state of one `run`, not shared)."""

    def __init__(self) -> None:
        self._made: list[Placeholder] = []

    @property
    def made(self) -> tuple[Placeholder, ...]:
        return tuple(self._made)

    def resolve(self, base: Path, target: str) -> str:
        """`target` (absolute or relative to `base`) with symlinks resolved inside `base`."""
        try:
            with Root(base) as root:
                return root.resolve(clean_relative(target))
        except RootfsError as e:
            raise SandboxError(f"mount point {printable(target)}: {e}") from e

    def ensure(self, base: Path, target: str, kind: Kind) -> str:
        """Resolve `target` in `base` and make what is missing of it; return the resolved path.

        An existing entry must be of `kind` (a directory, or anything but one for files).
        """
        resolved = self.resolve(base, target)
        if not resolved:
            raise SandboxError("cannot mount over the root itself")
        parts = resolved.split("/")
        try:
            with Root(base) as root:
                for depth in range(1, len(parts) + 1):
                    last = depth == len(parts)
                    self._ensure_one(root, base, "/".join(parts[:depth]), kind if last else "dir")
        except (OSError, RootfsError) as e:
            raise SandboxError(f"cannot make mount point {printable(resolved)}: {e}") from e
        return resolved

    def _ensure_one(self, root: Root, base: Path, path: str, kind: Kind) -> None:
        found = root.parent(path)
        if found is None:
            raise SandboxError(f"'{printable(path)}' has no directory to go in")
        fd, _, name = found
        try:
            existing = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            is_dir = stat.S_ISDIR(existing.st_mode)
            if is_dir != (kind == "dir"):
                what = "a directory" if is_dir else "not a directory"
                raise SandboxError(f"mount point '{printable(path)}' is {what} in the image")
            return
        parent = os.stat(fd)
        mode = 0o755 if kind == "dir" else 0o644
        if kind == "dir":
            os.mkdir(name, mode, dir_fd=fd)
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(name, flags, mode, dir_fd=fd))
        os.chmod(name, mode, dir_fd=fd)  # the builder's umask must not narrow a mount point
        made = os.stat(name, dir_fd=fd, follow_symlinks=False)
        times = (parent.st_atime_ns, parent.st_mtime_ns)
        self._made.append(Placeholder(base, path, kind, (made.st_ino, made.st_ctime_ns), times))
        log.debug("made placeholder %s %s in %s", kind, printable(path), base)

    def remove_all(self) -> None:
        """Remove, newest first, every placeholder that is still ours; never raises."""
        while self._made:
            made = self._made.pop()
            try:
                _remove(made)
            except (OSError, RootfsError) as e:
                log.warning("could not remove placeholder %s: %s", printable(made.path), e)


def _remove(made: Placeholder) -> None:
    with Root(made.base) as root:
        found = root.parent(made.path)
        if found is None:
            return
        fd, parent, name = found
        try:
            now = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        ctime = made.identity[1] if made.kind == "file" else now.st_ctime_ns  # dirs fill up
        if (now.st_ino, now.st_ctime_ns) != (made.identity[0], ctime):
            log.info("placeholder %s was replaced by the step; kept", printable(made.path))
            return
        if made.kind == "dir":
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                log.debug("placeholder directory %s is in use; kept", printable(made.path))
                return
        elif stat.S_ISREG(now.st_mode) and now.st_size == 0:
            os.unlink(name, dir_fd=fd)
        else:
            return
        os.utime(parent or ".", ns=made.parent_times, dir_fd=root.fd, follow_symlinks=False)
