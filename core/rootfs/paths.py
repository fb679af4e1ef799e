"""Paths confined to a root directory.

`Root` resolves paths as if its directory were `/` and hands out directory descriptors for them.
Every step is an `openat` of one component with `O_NOFOLLOW`, so the kernel never follows a
symlink for us: a symlink met on the way is read and its target walked by the same code.
With `clamp=True` (root filesystems) an absolute target restarts at the root and `..` stops at
the root, exactly as a process chrooted there would see it. With `clamp=False` (build contexts)
either is refused with `RootfsError`. Because the walk itself never leaves the root, a symlink
swapped in after a check cannot redirect a later write either.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from core.errors import RootfsError
from core.rootfs import prune

#: how many symlinks one resolution may follow, as Linux allows (MAXSYMLINKS)
MAX_LINKS = 40

_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_A_DIR = (errno.ENOTDIR, errno.ELOOP)


def printable(name: str, *, limit: int = 200) -> str:
    """`name` fit for a message: undecodable bytes as escapes, long names shortened."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2:]}"


def clean_relative(name: str, *, allow_absolute: bool = True) -> str:
    """Normalise an archive member name to a root-relative path ("" is the root itself).

    `.` and empty components are dropped and `..` removes the component before it. A leading
    `/` is dropped when `allow_absolute`, else refused; a `..` that would climb above the root is
    refused. Refusals raise `RootfsError`.
    """
    if name.startswith("/") and not allow_absolute:
        raise RootfsError(f"'{printable(name)}' is an absolute path")
    stripped = name.strip("/")
    probe = f"/{stripped}/"
    if "//" not in probe and "/./" not in probe and "/../" not in probe:
        return stripped  # already clean: the common case, linear even for very deep names
    parts: list[str] = []
    for part in stripped.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            parts.append(part)
        elif parts:
            parts.pop()
        else:
            raise RootfsError(f"'{printable(name)}' climbs out of the root with '..'")
    return "/".join(parts)


def join(parent: str, name: str) -> str:
    """Join a root-relative directory and a name."""
    return f"{parent}/{name}" if parent else name


@dataclass(frozen=True)
class _Cached:
    """The directory most recently walked to, kept open for the next entry of an archive."""

    path: str  # as asked for
    resolved: str
    fd: int

    @property
    def direct(self) -> bool:
        """No symlink, `.` or `..` on the way: `..` from here retraces `path`."""
        return self.path == self.resolved


class Root:
    """An open directory that every path and operation is confined to.

    Descriptors returned by `directory` and `parent` are borrowed: they stay valid until the next
    `directory`, `parent`, `open_dir` or `close` call. `open_dir` returns a descriptor the caller
    owns.
    """

    def __init__(self, path: str | os.PathLike[str], *, clamp: bool = True,
                 max_links: int = MAX_LINKS) -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise RootfsError(
                f"cannot open root directory {os.fspath(path)!r}: {e.strerror}") from e
        self.path = os.fspath(path)
        self.clamp = clamp
        self.max_links = max_links
        self._cache: _Cached | None = None
        self._retired: list[int] = []

    @property
    def fd(self) -> int:
        """Descriptor of the root directory itself (owned by this object)."""
        return self._fd

    def close(self) -> None:
        self._release()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def invalidate(self) -> None:
        """Forget the cached directory (anything that removes or replaces entries calls this).

        Its descriptor stays open until the next `directory` or `parent` call, so a caller that
        borrowed it can finish what it was doing.
        """
        if self._cache is not None:
            self._retired.append(self._cache.fd)
            self._cache = None

    def _release(self) -> None:
        self.invalidate()
        while self._retired:
            os.close(self._retired.pop())

    def resolve(self, path: str, *, follow_final: bool = True) -> str:
        """The root-relative path `path` leads to, symlinks resolved inside the root.

        Components that do not exist are kept as written. Raises `RootfsError` on symlink loops
        and, without clamping, on escapes.
        """
        parts = [p for p in path.split("/") if p not in ("", ".")]
        last = [parts.pop()] if not follow_final and parts and parts[-1] != ".." else []
        walk = _Walk(self, os.dup(self._fd), "")
        try:
            rest = walk.run(parts, create=False)
        finally:
            os.close(walk.fd)
        for part in [*rest, *last]:
            if part == "..":
                walk.climb_name(path)
            elif part not in ("", "."):
                walk.added.append(part)
        return walk.resolved

    def directory(self, path: str, *, create: bool = False, mode: int = 0o755,
                  on_create: Callable[[str], None] | None = None) -> tuple[int, str] | None:
        """A borrowed descriptor of the directory `path` leads to, and its resolved path.

        Missing directories are made with `mode` (reported to `on_create`) when `create`, else the
        answer is None; a non-directory in the way raises `RootfsError` when creating.
        """
        walk, todo = self._start(path)
        try:
            rest = walk.run(todo, create=create, mode=mode, on_create=on_create)
        except BaseException:
            os.close(walk.fd)
            raise
        if rest:
            os.close(walk.fd)
            if create:
                where = join(walk.resolved, rest[0])
                raise RootfsError(f"'{printable(where)}' is not a directory")
            return None
        self._release()
        self._cache = _Cached(path, walk.resolved, walk.fd)
        return walk.fd, self._cache.resolved

    def parent(self, path: str, *, create: bool = False, mode: int = 0o755,
               on_create: Callable[[str], None] | None = None) -> tuple[int, str, str] | None:
        """Borrowed descriptor and resolved path of `path`'s directory, and its last name.

        The last component is never followed. `path` must be clean (see `clean_relative`) and not
        the root itself.
        """
        head, _, base = path.rpartition("/")
        found = self.directory(head, create=create, mode=mode, on_create=on_create)
        return None if found is None else (found[0], found[1], base)

    def open_dir(self, path: str, *, create: bool = False, mode: int = 0o755) -> int:
        """A new descriptor (the caller closes it) of the directory `path` leads to."""
        found = self.directory(path, create=create, mode=mode)
        if found is None:
            raise RootfsError(f"'{printable(path)}' is not a directory in the root")
        return os.dup(found[0])

    def open(self, path: str, flags: int, mode: int = 0o644, *,
             create_parents: bool = False) -> int:
        """Open `path` (its directory resolved inside the root, its last component never
        followed: `O_NOFOLLOW` is added) and return a descriptor the caller owns."""
        found = self.parent(clean_relative(path, allow_absolute=self.clamp),
                            create=create_parents)
        if found is None or not found[2]:
            raise RootfsError(f"'{printable(path)}' has no directory in the root to open it in")
        return os.open(found[2], flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=found[0])

    def lstat(self, path: str) -> os.stat_result | None:
        """`lstat` of `path` inside the root (last component not followed); None if absent."""
        clean = clean_relative(path, allow_absolute=self.clamp)
        found = self.parent(clean) if clean else None
        try:
            if found is None:
                return os.stat(self._fd) if not clean else None
            return os.stat(found[2], dir_fd=found[0], follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete(self, path: str) -> bool:
        """Remove `path` inside the root, with everything below it if it is a directory, never
        following its last component. Returns whether there was anything to remove."""
        clean = clean_relative(path, allow_absolute=self.clamp)
        found = self.parent(clean) if clean else None
        if found is None:
            return False
        fd, resolved, name = found
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        self.remove(fd, name, path=join(resolved, name))
        return True

    def remove(self, parent_fd: int, name: str, *, path: str,
               keep: Callable[[str], bool] | None = None,
               removed: Callable[[str], None] | None = None) -> None:
        """Remove `name` in `parent_fd` (at root-relative `path`) and everything below it.

        Entries for which `keep` is true stay, with the directories that lead to them. Each removed
        path is reported to `removed`.
        """
        self.invalidate()
        prune.remove(parent_fd, name, path=path, keep=keep, removed=removed)

    def prune(self, dir_fd: int, *, path: str, keep: Callable[[str], bool],
              removed: Callable[[str], None] | None = None) -> None:
        """Remove what is inside directory `dir_fd` (at `path`) except what `keep` accepts."""
        self.invalidate()
        prune.prune(dir_fd, path=path, keep=keep, removed=removed)

    def _start(self, path: str) -> tuple[_Walk, list[str]]:
        """Where a walk to `path` can begin, and the components left to walk: the cached
        directory when `path` is it, below it, or (no symlinks on its way) near it; else the top.
        """
        cached = self._cache
        if cached is None or (not cached.direct and cached.path and
                              not path.startswith(cached.path + "/") and path != cached.path):
            return self._top(path)
        if path == cached.path:
            todo: list[str] = []
        elif not cached.path or path.startswith(cached.path + "/"):
            todo = path[len(cached.path):].split("/")
        elif not path:
            return self._top(path)
        elif cached.path.startswith(path + "/"):
            todo = [".."] * (cached.path.count("/", len(path) + 1) + 1)
        else:
            todo = _between(cached.path, path)
            if len(todo) > path.count("/"):
                return self._top(path)
        return _Walk(self, os.dup(cached.fd), cached.resolved), todo

    def _top(self, path: str) -> tuple[_Walk, list[str]]:
        return _Walk(self, os.dup(self._fd), ""), path.split("/") if path else []


def _between(start: str, goal: str) -> list[str]:
    """Steps (`..` and names) from directory `start` to `goal`, both clean, without symlinks."""
    here, there = start.split("/"), goal.split("/")
    shared = 0
    while shared < min(len(here), len(there)) and here[shared] == there[shared]:
        shared += 1
    return [".."] * (len(here) - shared) + there[shared:]


class _Walk:
    """One descent through a root (working state, not a value): the descriptor reached, the
    resolved path it started from and the names added since."""

    def __init__(self, root: Root, fd: int, base: str) -> None:
        self.root = root
        self.fd = fd  # owned
        self.base = base
        self.added: list[str] = []
        self.links = 0

    @property
    def resolved(self) -> str:
        return join(self.base, "/".join(self.added)) if self.added else self.base

    def run(self, parts: list[str], *, create: bool, mode: int = 0o755,
            on_create: Callable[[str], None] | None = None) -> list[str]:
        """Walk `parts`; return those that could not be walked (missing or not a directory)."""
        todo = parts[::-1]
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                self.climb("/".join(parts))
                continue
            step = _step(self.fd, part, create=create, mode=mode)
            if isinstance(step, tuple):
                self._move(step[0])
                self.added.append(part)
                if step[1] and on_create is not None:
                    on_create(self.resolved)
            elif step is None:
                return [part, *todo[::-1]]
            else:
                self._follow(step, todo)
        return []

    def climb(self, path: str) -> None:
        """Go to the parent directory; at the root, stay (clamp) or refuse."""
        if self.added or self.base:
            self._move(os.open("..", _PATH_FLAGS, dir_fd=self.fd))
        self.climb_name(path)

    def climb_name(self, path: str) -> None:
        if self.added:
            self.added.pop()
        elif self.base:
            self.base = self.base.rpartition("/")[0]
        elif not self.root.clamp:
            raise RootfsError(f"'{printable(path)}' leads out of the root through '..'")

    def _follow(self, target: str, todo: list[str]) -> None:
        """Splice a symlink's target into the walk."""
        self.links += 1
        if self.links > self.root.max_links:
            raise RootfsError(f"too many levels of symbolic links at '{printable(self.resolved)}'")
        if target.startswith("/"):
            if not self.root.clamp:
                raise RootfsError(f"symlink to '{printable(target)}' leaves the root")
            self._move(os.dup(self.root.fd))
            self.base, self.added = "", []
        todo.extend(reversed(target.split("/")))

    def _move(self, fd: int) -> None:
        os.close(self.fd)
        self.fd = fd


def _step(fd: int, part: str, *, create: bool, mode: int) -> tuple[int, bool] | str | None:
    """Open directory `part` in `fd`: (descriptor, made now), a symlink's target, or None if
    absent or not a directory."""
    try:
        return os.open(part, _PATH_FLAGS, dir_fd=fd), False
    except FileNotFoundError:
        if not create:
            return None
        return _make_dir(fd, part, mode)
    except OSError as e:
        if e.errno not in _NOT_A_DIR:
            raise
    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
        return os.readlink(part, dir_fd=fd)
    return None


def _make_dir(fd: int, part: str, mode: int) -> tuple[int, bool]:
    try:
        os.mkdir(part, 0o700, dir_fd=fd)
    except FileExistsError:
        return os.open(part, _PATH_FLAGS, dir_fd=fd), False
    os.chmod(part, mode, dir_fd=fd)
    return os.open(part, _PATH_FLAGS, dir_fd=fd), True
