"""The disk budget of one build: how much it may write under its work dir.

Usage is accounted, not sampled, so that other writers on the same file system do not count
against a build: the unpacked context (when it was unpacked into the work dir), every byte
extraction wrote (base layers, cached layers, COPY layers applied to an extracted tree), what
each RUN added (its layer's plain size) and the spool files under `layers/`. Independently of
the budget, a step also needs the space to exist: `free now - reserve` must hold it.
Without `--disk-budget` the budget is what the file system can spare: its free space at the
start, less a small reserve (so that logs, results and buffers still fit when the build is
stopped).

Steps are checked before they start against an estimate of what they will write (the base
layers' compressed sizes when a tree is to be extracted, a lower bound; the context's size for
a COPY that lands on disk, an upper bound) and again after they end; extraction is bounded by
what is left (`remaining`, `extract_layer(max_bytes=...)`). Going over is a `BudgetError`
naming the step; the pipeline then removes the work dir and tags nothing.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import BudgetError

log = logging.getLogger(__name__)

#: kept free on the file system: 5 % of its free space at the start, at most 64 MiB
RESERVE_FRACTION = 0.05
RESERVE_MAX = 64 << 20


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on `path`'s file system."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@dataclass
class DiskBudget:
    """Bytes one build may write (build-local accounting, see the module notes)."""

    path: Path  # the work dir: its file system must have the space
    limit: int
    reserve: int
    spool: Path | None = None  # the layers/ directory: its files count
    context_bytes: int = 0  # the unpacked context, when it is inside the work dir
    copy_bytes: int = 0  # what a COPY that lands on disk may write, at most
    written: int = 0  # extracted, and added by RUN steps

    @classmethod
    def start(cls, path: Path, limit: int | None, *, spool: Path | None = None) -> DiskBudget:
        """Start accounting; `limit` None means what the file system can spare."""
        free = free_bytes(path)
        reserve = min(RESERVE_MAX, int(free * RESERVE_FRACTION))
        if limit is None:
            limit = max(0, free - reserve)
        return cls(path, limit, reserve, spool=spool)

    def add(self, count: int) -> None:
        """Count bytes a step wrote (an extraction, a RUN's additions)."""
        self.written += max(0, count)

    def used(self) -> int:
        return self.context_bytes + self.written + _files_size(self.spool)

    def remaining(self) -> int:
        """What may still be written: within the budget, and within the free space."""
        try:
            free = free_bytes(self.path) - self.reserve
        except OSError:
            free = self.limit
        return max(0, min(self.limit - self.used(), free))

    def check(self, what: str, need: int = 0) -> None:
        """Raise `BudgetError` when `need` more bytes would not fit (or usage already does
        not); `what` names the step."""
        used = self.used()
        if used + need > self.limit:
            if need:
                raise BudgetError(f"{what}: needs about {size_text(need)} of disk, but "
                                  f"{size_text(used)} of the {size_text(self.limit)} disk "
                                  f"budget is used")
            raise BudgetError(f"{what}: used {size_text(used)} of disk, more than the "
                              f"{size_text(self.limit)} disk budget")
        try:
            free = free_bytes(self.path) - self.reserve
        except OSError:
            return
        if need > free:
            raise BudgetError(f"{what}: needs about {size_text(need)} of disk, but only "
                              f"{size_text(max(0, free))} is free on {self.path}")


@contextmanager
def naming_disk_errors(what: str) -> Iterator[None]:
    """Name `what` in a `BudgetError` raised inside, and turn a full disk (ENOSPC, EDQUOT)
    into one: a clean failure naming the step, never a bare OS error."""
    try:
        yield
    except BudgetError as error:
        raise BudgetError(f"{what}: {error}") from None
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" ({error.filename})" if error.filename else ""
        raise BudgetError(f"{what}: no space left on the device{where}") from None


def _files_size(directory: Path | None) -> int:
    if directory is None:
        return 0
    total = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        return total
    return total


def size_text(count: int) -> str:
    """`1.5 MiB`-style text for messages."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def tree_size(root: Path) -> int:
    """Apparent bytes of the regular files under `root` (a context, before COPY)."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total
