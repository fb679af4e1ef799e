"""The image's owners and modes after a RUN, when the disk cannot hold them.

A stage tree's metadata map (`Tree.metadata`) says what the image has where the disk differs:
an unprivileged extraction records every entry there. After a RUN the map is brought up to date
from the stat indexes taken before and after the step and from what the sandbox reports
(`core.run.Ownership`), inode by inode:
- a path gone from the tree loses its record (paths the index ignores keep theirs);
- an inode that was there before keeps its record; if the step changed its permission bits on
  disk (chmod works on the builder's own files), the new bits are taken;
- a new inode (a created file, or a file replaced by a new one) belongs to the step's user, with
  the mode it has on disk; a new name of an old inode (a hardlink) shares that inode's record;
- with real owners on disk (`ownership` None: chroot as root) the disk is right for everything
  the step touched, and only untouched records stay;
- a node made in a setgid directory takes the directory's group (and a directory the bit):
  the disk of an unprivileged build does not carry the bit, so the kernel did not do it;
- what a fake root recorded (fakeroot's database: chown, chmod, mknod) wins over the above,
  except that files a step running as another user creates stay that user's (fakeroot calls
  unknown files root's, which they would not be).
`effective` shows an index with the map's owners and modes, so that the snapshot diff sees a
chown that changed nothing on disk and the layer writer takes the image's metadata.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace

from core.rootfs.metadata import EntryMetadata, MetadataMap
from core.rootfs.tarstream import EntryKind
from core.run import FakeStat, Ownership
from core.snapshot.index import StatIndex, record_fields, with_owner
from core.snapshot.paths import parent_of

_KINDS = {stat.S_IFREG: EntryKind.FILE, stat.S_IFDIR: EntryKind.DIR,
          stat.S_IFLNK: EntryKind.SYMLINK, stat.S_IFCHR: EntryKind.CHAR,
          stat.S_IFBLK: EntryKind.BLOCK, stat.S_IFIFO: EntryKind.FIFO}
_SPECIAL = (EntryKind.CHAR, EntryKind.BLOCK, EntryKind.FIFO)

Inode = tuple[int, int]


def effective(index: StatIndex, metadata: Mapping[str, EntryMetadata]) -> StatIndex:
    """`index` with the owner and permission bits of every path the map records."""
    if not metadata:
        return index
    patched = {}
    for path, meta in metadata.items():
        record = index.record(path)
        if record is not None:
            patched[path] = with_owner(record, mode=meta.mode, uid=meta.uid, gid=meta.gid)
    return index.patched(patched)


def updated_metadata(old: Mapping[str, EntryMetadata], before: StatIndex, after: StatIndex,
                     ownership: Ownership | None, *, made_by_builder: Collection[str] = (),
                     ) -> MetadataMap:
    """The map after a step (see the module notes). `made_by_builder` are directories the
    builder made for the step (a missing working directory): root's, 0755."""
    if ownership is None and not old:
        return MetadataMap()  # real owners, nothing recorded: the disk says it all
    entries = {path: meta for path, meta in old.items()
               if path not in after and _ignored(path, after.ignore)}
    found: dict[str, EntryMetadata | None] = {}
    created: list[tuple[str, tuple[int, ...]]] = []
    for path, record in after.records():
        fields = record_fields(record)
        prior = before.record(path)
        if prior is not None and _same_node(record_fields(prior), fields):
            found[path] = _kept(old.get(path), record_fields(prior), fields, ownership)
        elif path in made_by_builder:
            found[path] = EntryMetadata(EntryKind.DIR, 0o755, 0, 0)
        elif ownership is not None:
            created.append((path, fields))
    shared = _by_inode(found, after)
    for path, fields in created:  # in walk order: a directory before what it holds
        assert ownership is not None
        parent = _setgid_group(parent_of(path), found, after)
        found[path] = _created(fields, shared, ownership, parent)
    for path, meta in found.items():
        fields = record_fields(after.record(path) or b"")
        if meta is not None and not _as_on_disk(meta, fields):
            entries[path] = meta
    return MetadataMap(entries)


def _kept(meta: EntryMetadata | None, prior: tuple[int, ...], fields: tuple[int, ...],
          ownership: Ownership | None) -> EntryMetadata | None:
    """The record of a node that was there before the step."""
    if ownership is None:
        return meta if prior[:3] == fields[:3] else None  # real owners: the disk is right
    if meta is not None and stat.S_IMODE(prior[0]) != stat.S_IMODE(fields[0]):
        meta = replace(meta, mode=stat.S_IMODE(fields[0]))  # chmod on disk
    fake = ownership.recorded.get((fields[8], fields[7]))
    if fake is None:
        return meta
    if meta is None:
        meta = EntryMetadata(_kind(fields[0]), stat.S_IMODE(fields[0]), fields[1], fields[2])
    return _faked(meta, fake, created=False, creator=ownership.creator)


def _created(fields: tuple[int, ...], shared: Mapping[Inode, EntryMetadata | None],
             ownership: Ownership, setgid_group: int | None) -> EntryMetadata | None:
    """The record of a node the step made (or of a new name of an old inode). In a setgid
    directory (`setgid_group`) it takes the directory's group, and a directory the bit, as the
    kernel would have done had the disk carried the bit."""
    inode = (fields[8], fields[7])
    if inode in shared:
        return shared[inode]  # already complete (None: the disk is right)
    uid, gid = ownership.creator
    mode = stat.S_IMODE(fields[0])
    if setgid_group is not None:
        gid = setgid_group
        mode |= stat.S_ISGID if stat.S_ISDIR(fields[0]) else 0
    meta = EntryMetadata(_kind(fields[0]), mode, uid, gid)
    fake = ownership.recorded.get(inode)
    if fake is None:
        return meta
    faked = _faked(meta, fake, created=True, creator=ownership.creator)
    if meta.kind is EntryKind.DIR:
        faked = replace(faked, mode=faked.mode | (mode & stat.S_ISGID))
    return faked


def _setgid_group(parent: str, found: Mapping[str, EntryMetadata | None], after: StatIndex,
                  ) -> int | None:
    """The group of `parent` when it is a setgid directory (per its record, else the disk)."""
    meta = found.get(parent)
    if meta is not None:
        return meta.gid if meta.kind is EntryKind.DIR and meta.mode & stat.S_ISGID else None
    record = after.record(parent) if parent else None
    if record is None:
        return None
    fields = record_fields(record)
    return fields[2] if stat.S_ISDIR(fields[0]) and fields[0] & stat.S_ISGID else None


def _faked(meta: EntryMetadata, fake: FakeStat, *, created: bool,
           creator: tuple[int, int]) -> EntryMetadata:
    """`meta` with what the fake root recorded for its inode. For a node the step created,
    fakeroot's 0:0 means "unknown" (it calls what it did not see made root's): `meta`'s owner
    stays, and a step running as another user cannot have given its files away."""
    kind = _KINDS.get(stat.S_IFMT(fake.mode), meta.kind)
    if kind not in _SPECIAL and meta.kind not in _SPECIAL:
        kind = meta.kind  # the disk's type, unless fakeroot made (or keeps) a device or FIFO
    uid, gid = fake.uid, fake.gid
    if created and ((uid, gid) == (0, 0) or creator[0] != 0):
        uid, gid = meta.uid, gid if gid not in (0, creator[1]) else meta.gid
    device = kind in (EntryKind.CHAR, EntryKind.BLOCK)
    return EntryMetadata(kind, stat.S_IMODE(fake.mode), uid, gid,
                         devmajor=os.major(fake.rdev) if device else 0,
                         devminor=os.minor(fake.rdev) if device else 0, xattrs=meta.xattrs)


def _by_inode(found: Mapping[str, EntryMetadata | None], after: StatIndex,
              ) -> dict[Inode, EntryMetadata | None]:
    """Inode -> record, for the multiply linked nodes that were there before the step (a new
    hardlink to one shares its record)."""
    shared: dict[Inode, EntryMetadata | None] = {}
    for path in after.linked_paths():
        record = after.record(path)
        if path in found and record is not None:
            meta = found[path]
            fields = record_fields(record)
            shared.setdefault((fields[8], fields[7]), meta)
    return shared


def _same_node(prior: tuple[int, ...], now: tuple[int, ...]) -> bool:
    """Same inode on the same device, same type: the node the step found is still there."""
    return prior[7:9] == now[7:9] and stat.S_IFMT(prior[0]) == stat.S_IFMT(now[0])


def _kind(st_mode: int) -> EntryKind:
    return _KINDS.get(stat.S_IFMT(st_mode), EntryKind.FILE)


def _as_on_disk(meta: EntryMetadata, fields: tuple[int, ...]) -> bool:
    """Whether the disk already says all `meta` says."""
    return (meta.kind is _kind(fields[0]) and meta.mode == stat.S_IMODE(fields[0])
            and (meta.uid, meta.gid) == fields[1:3] and not meta.xattrs)


def _ignored(path: str, ignore: Collection[str]) -> bool:
    return any(p in ignore for p in _self_and_parents(path))


def _self_and_parents(path: str) -> Iterator[str]:
    while path:
        yield path
        path = parent_of(path)
