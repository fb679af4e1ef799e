"""A stat index of a root directory: what every path looked like, without reading content.

Paths are layer paths (see `core.snapshot.paths`): root-relative, `/`-separated `str`, e.g.
`etc/passwd`. The root itself is not indexed.

Each path maps to one packed `bytes` record (mode, uid, gid, nlink, size, mtime_ns, ctime_ns,
inode, dev, then the symlink target's bytes). Packing keeps a 100,000-file tree near 20 MB, and
makes the common "nothing changed" test of the `redo` snapshot mode one byte-string comparison.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
import struct
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass

from core.errors import RootfsError
from core.snapshot.paths import layer_order_key, normalize_path, parent_of

_RECORD = struct.Struct("<IIIIqqqQQ")
_RECORD_SIZE = _RECORD.size
_READ_CHUNK = 1 << 20


class FileType(enum.Enum):
    """What kind of node a path is."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"
    SOCKET = "socket"


def file_type(st_mode: int) -> FileType:
    """The `FileType` of a `st_mode` value."""
    fmt = stat.S_IFMT(st_mode)
    if fmt == stat.S_IFREG:
        return FileType.FILE
    if fmt == stat.S_IFDIR:
        return FileType.DIR
    if fmt == stat.S_IFLNK:
        return FileType.SYMLINK
    if fmt == stat.S_IFCHR:
        return FileType.CHAR
    if fmt == stat.S_IFBLK:
        return FileType.BLOCK
    if fmt == stat.S_IFIFO:
        return FileType.FIFO
    return FileType.SOCKET


@dataclass(frozen=True, slots=True)
class FileStat:
    """The recorded metadata of one path (`mode` is the permission bits, 0o7777 at most)."""

    type: FileType
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    dev: int
    nlink: int
    link_target: str | None


def decode_record(record: bytes) -> FileStat:
    """Unpack one record of a `StatIndex`."""
    mode, uid, gid, nlink, size, mtime_ns, ctime_ns, inode, dev = _RECORD.unpack_from(record)
    target = os.fsdecode(record[_RECORD_SIZE:]) if stat.S_ISLNK(mode) else None
    return FileStat(file_type(mode), stat.S_IMODE(mode), uid, gid, size, mtime_ns, ctime_ns,
                    inode, dev, nlink, target)


def record_fields(record: bytes) -> tuple[int, ...]:
    """The fixed fields of a record: (st_mode, uid, gid, nlink, size, mtime_ns, ctime_ns,
    inode, dev)."""
    return _RECORD.unpack_from(record)


def link_target_bytes(record: bytes) -> bytes:
    """The symlink target stored in a record (empty for non-symlinks)."""
    return record[_RECORD_SIZE:]


def hash_file(path: str) -> bytes:
    """sha256 of a regular file's content, read without following a final symlink."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise RootfsError(f"cannot read {path} to hash it: {exc.strerror}") from exc
    try:
        while chunk := os.read(fd, _READ_CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.digest()


class StatIndex:
    """An immutable stat index of the tree under `root`, minus the `ignore`d subtrees."""

    __slots__ = ("_hashes", "_linked", "_records", "ignore", "one_file_system", "root")

    def __init__(self, root: str, *, ignore: frozenset[str], one_file_system: bool,
                 records: dict[str, bytes], linked: tuple[str, ...],
                 hashes: dict[str, bytes] | None) -> None:
        self.root = root
        self.ignore = ignore
        self.one_file_system = one_file_system
        self._records = records
        self._linked = linked
        self._hashes = hashes

    @classmethod
    def scan(cls, root: str, *, ignore: Iterable[str] = (), one_file_system: bool = False,
             hash_content: bool = False, previous: StatIndex | None = None) -> StatIndex:
        """Walk `root` (iteratively, one lstat per path, no content read unless asked).

        `ignore` holds root-relative paths (a leading `/` is allowed); each hides itself and its
        subtree. `one_file_system` skips directories on another device than the root (mount
        points). `hash_content` records a sha256 of every regular file, reusing the hash from
        `previous` for paths whose record there is identical.
        """
        builder = _Builder(os.path.abspath(root), ignore=ignore, one_file_system=one_file_system,
                           hash_content=hash_content, previous=previous)
        return builder.build()

    def refreshed(self, paths: Iterable[str]) -> StatIndex:
        """A new index with `paths`, their subtrees and their ancestors read again from disk and
        everything else copied: for steps that know what they wrote (COPY, ADD, WORKDIR), so
        the next snapshot does not see their files as the next step's changes."""
        builder = _Builder(self.root, ignore=self.ignore, one_file_system=self.one_file_system,
                           hash_content=self.hashed, previous=self)
        return builder.refresh({normalize_path(p) for p in paths} - {""}, self._records,
                               self._linked)

    @property
    def hashed(self) -> bool:
        """Whether this index holds content hashes of its regular files."""
        return self._hashes is not None

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, path: object) -> bool:
        return path in self._records

    def __iter__(self) -> Iterator[str]:
        """Paths in no particular order (use `sorted(index, key=layer_order_key)`)."""
        return iter(self._records)

    def get(self, path: str) -> FileStat | None:
        """The metadata recorded for `path`, or None when it is not in the index."""
        record = self._records.get(path)
        return None if record is None else decode_record(record)

    def record(self, path: str) -> bytes | None:
        """The packed record of `path` (see `decode_record`), or None."""
        return self._records.get(path)

    def records(self) -> Iterator[tuple[str, bytes]]:
        """(path, packed record) pairs in walk order: a directory always comes before the
        paths under it; otherwise in no particular order."""
        return iter(self._records.items())

    def content_hash(self, path: str) -> bytes | None:
        """The sha256 recorded for a regular file when the index was scanned with hashing."""
        return None if self._hashes is None else self._hashes.get(path)

    def linked_paths(self) -> tuple[str, ...]:
        """Non-directory paths whose inode had more than one link at scan time."""
        return self._linked


class _Builder:
    """The state of one walk."""

    def __init__(self, root: str, *, ignore: Iterable[str], one_file_system: bool,
                 hash_content: bool, previous: StatIndex | None) -> None:
        self.root = root
        self.ignore = frozenset(normalize_path(p) for p in ignore) - {""}
        self.records: dict[str, bytes] = {}
        self.linked: list[str] = []
        self.hashes: dict[str, bytes] | None = {} if hash_content else None
        self.previous = previous
        try:
            self.root_dev = os.stat(root).st_dev if one_file_system else -1
        except OSError as exc:
            raise RootfsError(f"cannot index {root}: {exc.strerror}") from exc

    def build(self, *, walk: bool = True) -> StatIndex:
        stack = [(self.root, "")] if walk else []
        while stack:
            directory, prefix = stack.pop()
            stack.extend(self.scan_dir(directory, prefix))
        if self.hashes is not None:
            self.add_hashes(self.hashes)
        return StatIndex(self.root, ignore=self.ignore, one_file_system=self.root_dev >= 0,
                         records=self.records, linked=tuple(self.linked), hashes=self.hashes)

    def refresh(self, targets: set[str], records: dict[str, bytes],
                linked: tuple[str, ...]) -> StatIndex:
        outermost = {t for t in targets if not _within(parent_of(t), targets)}
        self.records = {k: v for k, v in records.items() if not _within(k, outermost)}
        self.linked = [p for p in linked if not _within(p, outermost)]
        for target in sorted(outermost, key=layer_order_key):
            if _within(target, self.ignore):
                continue
            chain = [target]
            while up := parent_of(chain[-1]):
                chain.append(up)
            for path in reversed(chain):  # ancestors first, so directories precede children
                if not self.record_path(path):
                    break
            else:
                if stat.S_ISDIR(_RECORD.unpack_from(self.records[target])[0]):
                    stack = [(os.path.join(self.root, target), target + "/")]
                    while stack:
                        directory, prefix = stack.pop()
                        stack.extend(self.scan_dir(directory, prefix))
        return self.build(walk=False)

    def record_path(self, rel: str) -> bool:
        """(Re)record one path; False (and no record) when it does not exist."""
        full = os.path.join(self.root, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            self.records.pop(rel, None)
            return False
        except OSError as exc:
            raise RootfsError(f"cannot index {full}: {exc.strerror}") from exc
        record = _RECORD.pack(st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size,
                              st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        if stat.S_ISLNK(st.st_mode):
            record += _read_link(full) or b""
        elif not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and rel not in self.records:
            self.linked.append(rel)
        self.records[rel] = record
        return True

    def scan_dir(self, directory: str, prefix: str) -> list[tuple[str, str]]:
        """Record every entry of one directory; return its subdirectories to walk."""
        subdirs: list[tuple[str, str]] = []
        records, ignore, pack = self.records, self.ignore, _RECORD.pack
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    rel = prefix + entry.name
                    if rel in ignore:
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    mode = st.st_mode
                    record = pack(mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size,
                                  st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
                    if stat.S_ISDIR(mode):
                        if self.root_dev < 0 or st.st_dev == self.root_dev:
                            subdirs.append((entry.path, rel + "/"))
                    elif stat.S_ISLNK(mode):
                        target = _read_link(entry.path)
                        if target is None:
                            continue
                        record += target
                    elif st.st_nlink > 1:
                        self.linked.append(rel)
                    records[rel] = record
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RootfsError(f"cannot read directory {directory}: {exc.strerror}") from exc
        return subdirs

    def add_hashes(self, hashes: dict[str, bytes]) -> None:
        """Hash every regular file, reusing `previous` hashes of unchanged records."""
        previous = self.previous
        for rel, record in self.records.items():
            if not stat.S_ISREG(_RECORD.unpack_from(record)[0]):
                continue
            if previous is not None and previous.record(rel) == record:
                known = previous.content_hash(rel)
                if known is not None:
                    hashes[rel] = known
                    continue
            hashes[rel] = hash_file(os.path.join(self.root, rel))


def _within(path: str, roots: Set[str]) -> bool:
    """Whether `path` or one of its ancestors is in `roots`."""
    while path:
        if path in roots:
            return True
        path = parent_of(path)
    return False


def _read_link(path: str) -> bytes | None:
    """The target of a symlink as bytes; None when it vanished since it was listed."""
    try:
        return os.fsencode(os.readlink(path))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RootfsError(f"cannot read symlink {path}: {exc.strerror}") from exc
