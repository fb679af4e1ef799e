"""Removing directory trees without recursion and without following symlinks.

A tree may be tens of thousands of levels deep, so the walk holds one open descriptor at a time:
it goes down with `openat(O_NOFOLLOW)`, comes back up through `..` and remembers only names.
Symlinks are removed as links, never entered.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

_READ_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Keep = Callable[[str], bool]
Report = Callable[[str], None]


@dataclass
class _Frame:
    """One directory on the way down (working state of a walk, not a value)."""

    name: str  # in its parent directory
    path: str  # root-relative
    wipe: bool  # everything below goes, and the directory itself
    pending: list[tuple[str, bool]] | None = None  # subdirectories still to visit, and wipe


def remove(parent_fd: int, name: str, *, path: str, keep: Keep | None = None,
           removed: Report | None = None) -> None:
    """Remove `name` in directory `parent_fd` and all below it, except what `keep` accepts
    (with the directories leading to it). `path` is the root-relative path of `name`."""
    try:
        mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    wipe = keep is None or not keep(path)
    if not stat.S_ISDIR(mode):
        if wipe:
            os.unlink(name, dir_fd=parent_fd)
            _report(removed, path)
        return
    _descend(os.open(name, _READ_FLAGS, dir_fd=parent_fd), _Frame(name, path, wipe),
             keep, removed)
    if wipe:
        os.rmdir(name, dir_fd=parent_fd)
        _report(removed, path)


def prune(dir_fd: int, *, path: str, keep: Keep, removed: Report | None = None) -> None:
    """Remove the contents of directory `dir_fd` (at root-relative `path`) except what `keep`
    accepts, with the directories leading to it."""
    _descend(os.open(".", _READ_FLAGS, dir_fd=dir_fd), _Frame("", path, False), keep, removed)


def _descend(fd: int, first: _Frame, keep: Keep | None, removed: Report | None) -> None:
    """Empty the directory open as `fd` (owned) as `first` says, depth first, iteratively."""
    frames = [first]
    try:
        while True:
            top = frames[-1]
            if top.pending is None:
                top.pending = _clear(fd, top, keep, removed)
            if top.pending:
                name, wipe = top.pending.pop()
                fd = _move(fd, name)
                frames.append(_Frame(name, _join(top.path, name), wipe))
                continue
            frames.pop()
            if not frames:
                return
            fd = _move(fd, "..")
            if top.wipe:
                os.rmdir(top.name, dir_fd=fd)
                _report(removed, top.path)
    finally:
        os.close(fd)


def _clear(fd: int, frame: _Frame, keep: Keep | None,
           removed: Report | None) -> list[tuple[str, bool]]:
    """Unlink the non-directories of `frame` that go; return its subdirectories to visit."""
    with os.scandir(fd) as listing:
        entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
    subdirs: list[tuple[str, bool]] = []
    for name, is_dir in entries:
        path = _join(frame.path, name)
        wipe = frame.wipe or keep is None or not keep(path)
        if is_dir:
            subdirs.append((name, wipe))
        elif wipe:
            os.unlink(name, dir_fd=fd)
            _report(removed, path)
    return subdirs


def _move(fd: int, name: str) -> int:
    """Replace owned `fd` by the directory `name` in it (`..` for its parent)."""
    moved = os.open(name, _READ_FLAGS, dir_fd=fd)
    os.close(fd)
    return moved


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _report(removed: Report | None, path: str) -> None:
    if removed is not None:
        removed(path)
