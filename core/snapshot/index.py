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
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass

from core.errors import RootfsError
from core.snapshot.paths import encode_path, layer_order_key, normalize_path, parent_of

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


def with_owner(record: bytes, *, mode: int, uid: int, gid: int) -> bytes:
    """`record` with its permission bits (0o7777), uid and gid replaced; the type is kept."""
    fields = list(_RECORD.unpack_from(record))
    fields[0] = stat.S_IFMT(fields[0]) | (mode & 0o7777)
    fields[1], fields[2] = uid, gid
    return _RECORD.pack(*fields) + record[_RECORD_SIZE:]


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

    __slots__ = ("_hashes", "_linked", "_records", "ignore", "one_file_system", "ordered",
                 "root")

    def __init__(self, root: str, *, ignore: frozenset[str], one_file_system: bool,
                 records: dict[str, bytes], linked: tuple[str, ...],
                 hashes: dict[str, bytes] | None, ordered: bool = False) -> None:
        self.root = root
        self.ignore = ignore
        self.one_file_system = one_file_system
        self.ordered = ordered  # records() come in layer order (a full scan)
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

    def patched(self, records: Mapping[str, bytes]) -> StatIndex:
        """A copy with the records of some indexed paths replaced (e.g. by `with_owner`, with
        what a fake root says of them); paths not in the index are ignored."""
        merged = dict(self._records)  # same keys, same order
        merged.update((path, record) for path, record in records.items() if path in merged)
        return StatIndex(self.root, ignore=self.ignore, one_file_system=self.one_file_system,
                         records=merged, linked=self._linked, hashes=self._hashes,
                         ordered=self.ordered)

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
        paths under it; in layer order (`paths.layer_order_key`) when `ordered`."""
        return iter(self._records.items())

    def mapping(self) -> Mapping[str, bytes]:
        """path -> packed record, in `records()` order (the index's own map: read only)."""
        return self._records

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
        if walk:
            self.walk(self.root, "")
        if self.hashes is not None:
            self.add_hashes(self.hashes)
        return StatIndex(self.root, ignore=self.ignore, one_file_system=self.root_dev >= 0,
                         records=self.records, linked=tuple(self.linked), hashes=self.hashes,
                         ordered=walk)

    def walk(self, top: str, prefix: str) -> None:
        """Record everything below `top` in layer order: depth first, each directory's
        entries sorted by name bytes, a directory's subtree right after it."""
        stack = [iter(self.listing(top, prefix))]
        records, linked, pack, root_dev = self.records, self.linked, _RECORD.pack, self.root_dev
        while stack:
            for entry, rel in stack[-1]:  # the common cases inline: this loop is the scan
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise RootfsError(f"cannot index {entry.path}: {exc.strerror}") from exc
                mode = st.st_mode
                record = pack(mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size,
                              st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
                if mode & 0o170000 == 0o040000:  # a directory: its subtree comes next
                    records[rel] = record
                    if root_dev < 0 or st.st_dev == root_dev:
                        stack.append(iter(self.listing(entry.path, rel + "/")))
                        break
                    continue
                if mode & 0o170000 == 0o120000:
                    target = _read_link(entry.path)
                    if target is None:
                        continue
                    record += target
                elif st.st_nlink > 1:
                    linked.append(rel)
                records[rel] = record
            else:
                stack.pop()

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
                    self.walk(os.path.join(self.root, target), target + "/")
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

    def listing(self, directory: str, prefix: str) -> list[tuple[os.DirEntry[str], str]]:
        """(entry, layer path) of one directory, not ignored, sorted by name bytes."""
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RootfsError(f"cannot read directory {directory}: {exc.strerror}") from exc
        if all(entry.name.isascii() for entry in entries):
            entries.sort(key=_name)
        else:  # code point order differs from byte order for undecodable names
            entries.sort(key=_name_bytes)
        ignore = self.ignore
        return [(entry, prefix + entry.name) for entry in entries
                if not ignore or prefix + entry.name not in ignore]

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


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _name_bytes(entry: os.DirEntry[str]) -> bytes:
    return encode_path(entry.name)


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
