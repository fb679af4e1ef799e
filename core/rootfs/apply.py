"""Applying archive entries to a root directory, one at a time, with OCI layer rules.

- Names are normalised (`clean_relative`); a `..` that climbs above the root is refused, and so
  is an absolute name when the root does not clamp. The parent directory is resolved inside the
  root (symlinks followed as a chrooted process would, see `Root`); the last component is never
  followed: whatever is there is replaced, except a directory by a directory, which is merged.
- With `whiteouts`, `.wh.NAME` removes NAME and `.wh..wh..opq` empties its directory — of what
  the layers below left only: paths written by this archive, before or after the marker, stay
  (OCI image spec, "Whiteouts"). Other `.wh..wh.*` names (AUFS bookkeeping) are ignored.
- A hardlink's target must already exist inside the root and not be a directory.
- Directories get their mode and times after their contents, in `finish`; a directory the
  archive changes without listing it (a whiteout, a new file in it) keeps the times it had.
- With a metadata dict, what the file system could not take (owner, mode bits, device nodes,
  privileged xattrs) is recorded under the entry's resolved path; paths that are removed or fully
  applied drop their record.
- The paths this archive touches are remembered (whiteouts and the metadata map need them), and
  that memory is bounded: an entry nested N levels deep under directories this archive creates or
  touches costs about N²/2 bytes of path strings, so a few kilobytes of deeply nested names could
  otherwise demand gigabytes. Past `MAX_BOOKKEEPING` bytes the archive fails with `BudgetError`.
Errors name the entry: `ArchiveError` for what the archive asks, `BudgetError` for a full disk or
the bookkeeping limit, `RootfsError` for other file-system failures.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

from core.errors import ArchiveError, BudgetError, BuildError, RootfsError
from core.rootfs import nodes
from core.rootfs.metadata import EntryMetadata
from core.rootfs.nodes import Payload, WritePolicy
from core.rootfs.paths import Root, clean_relative, join, printable
from core.rootfs.tarstream import EntryKind, TarEntry

log = logging.getLogger(__name__)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: bytes of remembered paths one archive may need (a 10,000-deep chain takes about 96 MiB)
MAX_BOOKKEEPING = 128 << 20
#: what one remembered path costs besides its characters (string and set-slot overhead)
_PATH_OVERHEAD = 100


class Applier:
    """Writes entries into a `Root` (working state of one archive, not a value)."""

    def __init__(self, root: Root, policy: WritePolicy, *, whiteouts: bool,
                 metadata: dict[str, EntryMetadata] | None = None,
                 max_bookkeeping: int = MAX_BOOKKEEPING) -> None:
        self.root = root
        self.policy = policy
        self.whiteouts = whiteouts
        self.metadata = metadata
        self.max_bookkeeping = max_bookkeeping
        self._bookkeeping = 0  # bytes of paths in `_touched` (the metadata shares the strings)
        self._touched: set[str] = set()  # resolved paths this archive wrote, with ancestors
        self._dirs: dict[str, tuple[int, int]] = {}  # resolved path -> (disk mode, mtime_ns)
        self._times: dict[str, tuple[int, int]] = {}  # unlisted directory -> (atime, mtime)

    def apply(self, entry: TarEntry, payload: Payload) -> None:
        """Write one entry; its payload is read through `payload`."""
        try:
            self._apply(entry, payload)
        except (ArchiveError, BudgetError):
            raise
        except BuildError as e:
            raise ArchiveError(f"'{printable(entry.name)}': {e}") from e
        except OSError as e:
            raise _disk_error(entry.name, e) from e
        except (ValueError, OverflowError) as e:
            raise ArchiveError(f"'{printable(entry.name)}': {e}") from e

    def finish(self) -> None:
        """Give directories their modes and times, deepest first."""
        for path, times in reversed(self._times.items()):
            if path not in self._dirs:
                self._finish_dir(path, None, times)
        for path, (mode, mtime_ns) in reversed(self._dirs.items()):
            self._finish_dir(path, mode, (mtime_ns, mtime_ns))
        self._dirs.clear()
        self._times.clear()

    def _finish_dir(self, path: str, mode: int | None, times: tuple[int, int]) -> None:
        try:
            found = self.root.parent(path)
            if found is not None:
                nodes.finish_dir(found[0], found[2], mode=mode, times=times)
        except OSError as e:
            raise _disk_error(path, e) from e

    def _changing(self, fd: int, path: str) -> None:
        """Directory `path` (open as `fd`) is about to change: remember its times."""
        if path and path not in self._times and path not in self._dirs:
            st = os.stat(fd)
            self._times[path] = (st.st_atime_ns, st.st_mtime_ns)

    def _apply(self, entry: TarEntry, payload: Payload) -> None:
        path = clean_relative(entry.name, allow_absolute=self.root.clamp)
        if not path:
            log.debug("skipping an entry for the root directory itself")
            return
        head, _, base = path.rpartition("/")
        if self.whiteouts and base.startswith(WHITEOUT):
            self._whiteout(head, base)
        elif entry.kind is EntryKind.HARDLINK:
            self._hardlink(path, entry)
        else:
            self._create(path, entry, payload)

    def _create(self, path: str, entry: TarEntry, payload: Payload) -> None:
        if entry.kind is EntryKind.SYMLINK and not entry.linkname:
            raise ArchiveError(f"'{printable(entry.name)}': symlink with an empty target")
        fd, real = self._parent(path)
        base = path.rpartition("/")[2]
        self._changing(fd, real.rpartition("/")[0])
        exists = self._clear(fd, base, real, keep_dir=entry.kind is EntryKind.DIR)
        if entry.kind is EntryKind.FILE:
            complete = nodes.write_file(fd, base, entry, payload, self.policy)
        elif entry.kind is EntryKind.DIR:
            complete = nodes.make_dir(fd, base, entry, self.policy, exists=exists)
            self._dirs.pop(real, None)
            self._dirs[real] = (self.policy.disk_mode(entry.kind, entry.mode), entry.mtime_ns)
        elif entry.kind is EntryKind.SYMLINK:
            complete = nodes.make_symlink(fd, base, entry, self.policy)
        else:
            complete = nodes.make_special(fd, base, entry, self.policy)
        self._mark(real)
        self._record(real, entry, complete)

    def _parent(self, path: str) -> tuple[int, str]:
        """Borrowed descriptor of `path`'s directory (made if missing) and `path` resolved."""
        found = self.root.parent(path, create=True, on_create=self._implicit)
        assert found is not None  # creating never answers None
        return found[0], join(found[1], found[2])

    def _clear(self, fd: int, name: str, path: str, *, keep_dir: bool) -> bool:
        """Make way for a new node; True if a directory is there and stays (to be merged)."""
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return False
        if keep_dir and stat.S_ISDIR(mode):
            return True
        self.root.remove(fd, name, path=path, removed=self._forget)
        return False

    def _hardlink(self, path: str, entry: TarEntry) -> None:
        target = clean_relative(entry.linkname, allow_absolute=self.root.clamp)
        found = self.root.parent(target) if target else None
        if found is None:
            raise ArchiveError(f"'{printable(entry.name)}': hard link target "
                               f"'{printable(entry.linkname)}' is not in the root")
        target_fd, real_target = os.dup(found[0]), join(found[1], found[2])
        try:
            self._link(path, entry, target_fd, found[2], real_target)
        finally:
            os.close(target_fd)

    def _link(self, path: str, entry: TarEntry, target_fd: int, target: str,
              real_target: str) -> None:
        try:
            target_stat = os.stat(target, dir_fd=target_fd, follow_symlinks=False)
        except FileNotFoundError:
            target_stat = None
        if target_stat is None or stat.S_ISDIR(target_stat.st_mode):
            what = "does not exist yet" if target_stat is None else "is a directory"
            raise ArchiveError(f"'{printable(entry.name)}': hard link target "
                               f"'{printable(entry.linkname)}' {what}")
        fd, real = self._parent(path)
        base = path.rpartition("/")[2]
        try:
            existing = os.stat(base, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is None or not os.path.samestat(existing, target_stat):
            self._changing(fd, real.rpartition("/")[0])
            self._clear(fd, base, real, keep_dir=False)
            os.link(target, base, src_dir_fd=target_fd, dst_dir_fd=fd, follow_symlinks=False)
        self._mark(real)
        if self.metadata is not None:
            shared = self.metadata.get(real_target)
            if shared is None:
                self.metadata.pop(real, None)
            else:
                self.metadata[real] = shared

    def _whiteout(self, head: str, base: str) -> None:
        if base == OPAQUE:
            self._opaque(head)
            return
        if base.startswith(WHITEOUT + WHITEOUT):
            log.debug("ignoring AUFS metadata entry %s", printable(base))
            return
        name = base.removeprefix(WHITEOUT)
        if name in ("", ".", ".."):
            raise ArchiveError(f"whiteout '{printable(join(head, base))}' names '{name}'")
        found = self.root.directory(head)
        if found is None:
            return
        fd, real = found[0], join(found[1], name)
        self._changing(fd, found[1])
        if real not in self._touched:
            self.root.remove(fd, name, path=real, removed=self._forget)
            return
        try:  # this archive wrote here: hide only what the layers below had
            sub = os.open(name, _PATH_FLAGS, dir_fd=fd)
        except OSError:
            return
        try:
            self.root.prune(sub, path=real, keep=self._touched.__contains__,
                            removed=self._forget)
        finally:
            os.close(sub)

    def _opaque(self, head: str) -> None:
        found = self.root.directory(head, create=True, on_create=self._implicit)
        assert found is not None
        fd, real = found
        self._mark(real)
        self._changing(fd, real)
        self.root.prune(fd, path=real, keep=self._touched.__contains__, removed=self._forget)

    def _mark(self, path: str) -> None:
        while path and path not in self._touched:
            self._bookkeeping += len(path) + _PATH_OVERHEAD
            if self._bookkeeping > self.max_bookkeeping:
                raise BudgetError(
                    f"'{printable(path)}': the archive nests paths so deep that remembering "
                    f"them needs more than {self.max_bookkeeping} bytes")
            self._touched.add(path)
            path = path.rpartition("/")[0]

    def _implicit(self, path: str) -> None:
        """A parent directory the archive did not list was made (root-owned, 0755)."""
        self._mark(path)
        if self.metadata is not None:
            if self.policy.owner_access:
                self.metadata[path] = EntryMetadata(EntryKind.DIR, 0o755, 0, 0)
            else:
                self.metadata.pop(path, None)

    def _record(self, path: str, entry: TarEntry, complete: bool) -> None:
        if self.metadata is None:
            return
        if complete:
            self.metadata.pop(path, None)
            return
        self.metadata[path] = EntryMetadata(
            kind=entry.kind, mode=entry.mode, uid=entry.uid, gid=entry.gid,
            devmajor=entry.devmajor, devminor=entry.devminor, xattrs=entry.xattrs)

    def _forget(self, path: str) -> None:
        self._dirs.pop(path, None)
        if self.metadata is not None:
            self.metadata.pop(path, None)


def _disk_error(name: str, error: OSError) -> BuildError:
    shown = printable(name)
    if error.errno == errno.ENAMETOOLONG:
        return ArchiveError(f"'{shown}': name too long for the file system")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return BudgetError(f"'{shown}': no space left on the device")
    return RootfsError(f"'{shown}': {error.strerror or error}")
