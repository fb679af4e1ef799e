"""Writing one archive entry as a file-system node, with as much of its metadata as allowed.

Every node is created by name inside an already resolved parent directory descriptor and never
through a symlink: regular files with `O_CREAT|O_EXCL|O_NOFOLLOW`, the rest with `*at` calls.
Metadata goes on in the order that keeps it: owner, then mode (chown clears setuid/setgid),
then xattrs (`security.capability` would be cleared by chown or a write), then times. Each
function says whether the file system now carries everything the entry says.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from core.rootfs.compression import CHUNK
from core.rootfs.paths import printable
from core.rootfs.tarstream import EntryKind, TarEntry

log = logging.getLogger(__name__)

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PRIVILEGED_XATTRS = ("security.", "trusted.")
#: errors that mean "not allowed here", as opposed to a broken disk
_REFUSED = (errno.EPERM, errno.EINVAL, errno.EACCES)

Payload = Callable[[memoryview], int]


@dataclass(frozen=True)
class WritePolicy:
    """How much of an entry's metadata the file system is asked to carry."""

    privileged: bool  # chown, mknod and security./trusted. xattrs are attempted
    preserve_owner: bool = True  # False: files belong to the builder (build contexts)
    preserve_xattrs: bool = True

    @property
    def owner_access(self) -> bool:
        """On-disk modes keep the builder able to read, write and traverse (unprivileged
        layers: the image's real modes live in the metadata map)."""
        return self.preserve_owner and not self.privileged

    def disk_mode(self, kind: EntryKind, mode: int) -> int:
        """The mode to put on disk for an entry of `kind` whose image mode is `mode`."""
        if not self.owner_access:
            return mode
        if kind is EntryKind.DIR:
            return (mode & 0o1777) | 0o700
        return (mode & 0o777) | 0o600


@dataclass(frozen=True)
class _Node:
    parent_fd: int
    name: str
    fd: int | None = None  # for regular files and directories


def write_file(parent_fd: int, name: str, entry: TarEntry, payload: Payload,
               policy: WritePolicy) -> bool:
    """Create regular file `name` with the payload; True if all metadata was applied."""
    fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent_fd)
    try:
        _copy(fd, payload)
        node = _Node(parent_fd, name, fd)
        complete = _attributes(node, entry, policy, EntryKind.FILE)
        _times(node, entry.mtime_ns)
        return complete
    finally:
        os.close(fd)


def make_dir(parent_fd: int, name: str, entry: TarEntry, policy: WritePolicy, *,
             exists: bool) -> bool:
    """Make (or adopt) directory `name`. Its mode and times are left to `finish_dir`, once its
    contents are in place."""
    if not exists:
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        if not exists:
            os.fchmod(fd, 0o700)
        node = _Node(parent_fd, name, fd)
        owned = _owner(node, entry, policy)
        exact = policy.disk_mode(EntryKind.DIR, entry.mode) == entry.mode
        return _xattrs(node, entry, policy) and owned and exact
    finally:
        os.close(fd)


def finish_dir(parent_fd: int, name: str, *, mode: int | None,
               times: tuple[int, int]) -> None:
    """Give directory `name` its final mode (None: keep it) and (atime, mtime) in ns; skipped if
    it is gone or replaced."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return
        raise
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        _times(_Node(parent_fd, name, fd), times[1], atime_ns=times[0])
    finally:
        os.close(fd)


def make_symlink(parent_fd: int, name: str, entry: TarEntry, policy: WritePolicy) -> bool:
    """Create symlink `name` pointing at `entry.linkname`, written as is."""
    os.symlink(entry.linkname, name, dir_fd=parent_fd)
    node = _Node(parent_fd, name)
    owned = _owner(node, entry, policy)
    complete = _xattrs(node, entry, policy) and owned
    _times(node, entry.mtime_ns)
    return complete


def make_special(parent_fd: int, name: str, entry: TarEntry, policy: WritePolicy) -> bool:
    """Create a FIFO or device node; unprivileged, a device becomes an empty placeholder file."""
    real = True
    if entry.kind is EntryKind.FIFO:
        os.mkfifo(name, 0o600, dir_fd=parent_fd)
    else:
        real = policy.privileged and _mknod(parent_fd, name, entry)
        if not real:
            os.close(os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent_fd))
    node = _Node(parent_fd, name)
    complete = _attributes(node, entry, policy, entry.kind if real else EntryKind.FILE)
    _times(node, entry.mtime_ns)
    return complete and real


def _mknod(parent_fd: int, name: str, entry: TarEntry) -> bool:
    kind = stat.S_IFCHR if entry.kind is EntryKind.CHAR else stat.S_IFBLK
    device = os.makedev(entry.devmajor, entry.devminor)
    try:
        os.mknod(name, kind | 0o600, device, dir_fd=parent_fd)
    except OSError as e:
        if e.errno not in _REFUSED:
            raise
        log.debug("mknod %s refused (%s); writing a placeholder", printable(name), e.strerror)
        return False
    return True


def _copy(fd: int, payload: Payload) -> None:
    buffer = memoryview(bytearray(CHUNK))
    while count := payload(buffer):
        written = 0
        while written < count:
            written += os.write(fd, buffer[written:count])


def _attributes(node: _Node, entry: TarEntry, policy: WritePolicy, kind: EntryKind) -> bool:
    """Owner, mode and xattrs of a non-directory, in that order."""
    owned = _owner(node, entry, policy)
    exact = _mode(node, policy.disk_mode(kind, entry.mode)) == entry.mode
    return _xattrs(node, entry, policy) and owned and exact


def _owner(node: _Node, entry: TarEntry, policy: WritePolicy) -> bool:
    if not (policy.privileged and policy.preserve_owner):
        return False
    try:
        if node.fd is not None:
            os.fchown(node.fd, entry.uid, entry.gid)
        else:
            os.chown(node.name, entry.uid, entry.gid, dir_fd=node.parent_fd,
                     follow_symlinks=False)
    except OSError as e:
        if e.errno not in _REFUSED:
            raise
        log.debug("chown %s to %d:%d refused: %s", printable(node.name), entry.uid, entry.gid,
                  e.strerror)
        return False
    return True


def _mode(node: _Node, mode: int) -> int:
    """Set `mode`; return the permission bits the node ended up with."""
    if node.fd is not None:
        os.fchmod(node.fd, mode)
        return stat.S_IMODE(os.fstat(node.fd).st_mode)
    os.chmod(node.name, mode, dir_fd=node.parent_fd)
    return stat.S_IMODE(os.stat(node.name, dir_fd=node.parent_fd,
                                follow_symlinks=False).st_mode)


def _xattrs(node: _Node, entry: TarEntry, policy: WritePolicy) -> bool:
    """Set the entry's xattrs the policy allows; True if every one of them is on disk."""
    if not entry.xattrs:
        return True
    if not policy.preserve_xattrs:
        return False
    complete = True
    for key, value in entry.xattrs:
        if not policy.privileged and key.startswith(_PRIVILEGED_XATTRS):
            complete = False
            continue
        try:
            if node.fd is not None:
                os.setxattr(node.fd, key, value)
            else:  # the node by name, through the parent's descriptor, not followed
                os.setxattr(f"/proc/self/fd/{node.parent_fd}/{node.name}", key, value,
                            follow_symlinks=False)
        except (OSError, ValueError) as e:
            log.debug("xattr %s on %s not set: %s", printable(key), printable(node.name), e)
            complete = False
    return complete


def _times(node: _Node, mtime_ns: int, atime_ns: int | None = None) -> None:
    times = (mtime_ns if atime_ns is None else atime_ns, mtime_ns)
    try:
        if node.fd is not None:
            os.utime(node.fd, ns=times)
        else:
            os.utime(node.name, ns=times, dir_fd=node.parent_fd, follow_symlinks=False)
    except (OverflowError, ValueError, OSError) as e:
        if isinstance(e, OSError) and e.errno not in (errno.EINVAL, errno.EOVERFLOW):
            raise
        log.debug("time %d not representable for %s", mtime_ns, printable(node.name))
