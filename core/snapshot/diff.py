"""Change detection: what a step did to a tree, from the stat index taken before it.

Modes (kaniko's `--snapshot-mode` names):
- `redo` (default): a path changed when its type, size, permission bits, uid, gid, mtime_ns,
  ctime_ns, inode or symlink target changed. ctime cannot be set back by a process, so a
  same-size rewrite whose mtime was restored is still seen.
- `time`: only the type and mtime_ns are compared (cheapest, misses restored mtimes).
- `full`: like `redo`, but content decides: a regular file whose type, permission bits, owner
  and size are unchanged counts as unchanged when its sha256 is the same (a `touch`, a rewrite
  with the same bytes, a replace by an identical copy); directories count as changed only when
  their permission bits or owner changed; symlinks when their owner or target changed. Hashes
  are computed only for files whose stat changed (the "before" index must be scanned with
  `hash_content=True`; `snapshot` keeps the hashes going from step to step).

All modes find additions, modifications, type changes (reported as modifications: the new entry
replaces the old node on extraction), deletions and new hardlinks. Only the topmost deleted
path is reported: a deleted directory hides its children, and so does a directory replaced by a
non-directory. In `redo` and `full` a directory whose inode changed was deleted and recreated:
it is reported once as `OPAQUE` (the layer gets an opaque marker `.wh..wh..opq` hiding
everything the lower layers held below it) and every path under it is an addition, rather than
one whiteout per vanished child. (A recreated directory that happens to get its old inode number
back is compared child by child instead, which gives the same extracted tree.)
"""

from __future__ import annotations

import bisect
import enum
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, overload

from core.snapshot.index import StatIndex, link_target_bytes, record_fields
from core.snapshot.paths import layer_order_key, parent_of, whiteout_name


class SnapshotMode(enum.Enum):
    """How changes are detected (`--snapshot-mode`)."""

    REDO = "redo"
    TIME = "time"
    FULL = "full"


class ChangeKind(enum.Enum):
    """What happened to a path."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    OPAQUE = "opaque"  # a directory deleted and recreated: entry + opaque marker


class Change(NamedTuple):
    """One changed path. `hardlink_to` names the path (earlier in layer order, in this layer or
    unchanged below it) that a new link shares its inode with; the entry is then a hardlink."""

    path: str
    kind: ChangeKind
    hardlink_to: str | None = None

    @property
    def entry_name(self) -> str:
        """The name of this change's entry in the layer (a whiteout for a deletion)."""
        return whiteout_name(self.path) if self.kind is ChangeKind.DELETE else self.path


@dataclass(frozen=True)
class LayerDiff:
    """The changes of one step, in layer order, and the unchanged directories above them that a
    layer must still contain (written with their real metadata)."""

    changes: tuple[Change, ...]
    parents: tuple[str, ...]
    index: StatIndex | None = field(default=None, compare=False, repr=False)  # the "after"

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def entries(self) -> list[tuple[str, Change | None]]:
        """(entry name, change) for every entry of the layer in layer order; parents have None.
        Both lists are in layer order: each parent goes where a binary search puts it, so keys
        are computed for a few changes per parent, not for every change."""
        items: list[tuple[str, Change | None]] = [(c.entry_name, c) for c in self.changes]
        if not self.parents:
            return items
        keys = _Keys(items)
        merged: list[tuple[str, Change | None]] = []
        start = 0
        for parent in self.parents:
            cut = bisect.bisect_left(keys, layer_order_key(parent), lo=start)
            merged.extend(items[start:cut])
            merged.append((parent, None))
            start = cut
        merged.extend(items[start:])
        return merged


class _Keys(Sequence[bytes]):
    """Layer order keys of entries, computed when a search looks at them."""

    def __init__(self, items: list[tuple[str, Change | None]]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [layer_order_key(name) for name, _ in self._items[index]]
        return layer_order_key(self._items[index][0])


def snapshot(before: StatIndex, *, mode: SnapshotMode = SnapshotMode.REDO,
             ) -> tuple[LayerDiff, StatIndex]:
    """Scan the tree `before` was taken of and diff it; the new index is the next step's before.
    In `full` mode the new index carries content hashes (reused where the stat is unchanged)."""
    full = mode is SnapshotMode.FULL
    after = StatIndex.scan(before.root, ignore=before.ignore,
                           one_file_system=before.one_file_system,
                           hash_content=full, previous=before if full else None)
    return diff(before, after, mode=mode), after


def diff(before: StatIndex, after: StatIndex, *, mode: SnapshotMode = SnapshotMode.REDO,
         ) -> LayerDiff:
    """Compare two indexes of the same root."""
    changes, opaque = _additions_and_modifications(before, after, mode)
    deleted = _deletions(before, after, opaque)
    changes = _with_hardlinks(changes, after)
    if deleted or not after.ordered:  # else the walk order is the layer order already
        changes.extend(deleted)
        changes.sort(key=_change_key)
    return LayerDiff(tuple(changes), _parents(changes), after)


def _change_key(change: Change) -> bytes:
    return layer_order_key(change.entry_name)


def whole_tree(index: StatIndex) -> LayerDiff:
    """Everything in `index` as additions (hardlinks included): the layer of a tree built
    from scratch, or the single snapshot of a whole stage."""
    empty = StatIndex(index.root, ignore=index.ignore, one_file_system=index.one_file_system,
                      records={}, linked=(), hashes=None, ordered=True)
    return diff(empty, index)


def _additions_and_modifications(before: StatIndex, after: StatIndex, mode: SnapshotMode,
                                 ) -> tuple[list[Change], set[str]]:
    changes: list[Change] = []
    append = changes.append
    opaque: set[str] = set()
    detect_recreated = mode is not SnapshotMode.TIME
    prior_of = before.mapping().get
    added = ChangeKind.ADD
    for path, record in after.mapping().items():  # a directory comes before its subtree
        prior = prior_of(path)
        if prior == record and not opaque:
            continue
        if prior is None or (opaque and _covered(path, opaque)):
            append(Change(path, added))
        elif detect_recreated and _recreated_dir(prior, record):
            opaque.add(path)
            changes.append(Change(path, ChangeKind.OPAQUE))
        elif prior != record and _differs(path, prior, record, before, after, mode):
            changes.append(Change(path, ChangeKind.MODIFY))
    return changes, opaque


def _covered(path: str, opaque: set[str]) -> bool:
    """Whether a proper ancestor of `path` is an opaque (recreated) directory."""
    cut = path.rfind("/")
    while cut > 0:
        path = path[:cut]
        if path in opaque:
            return True
        cut = path.rfind("/")
    return False


def _recreated_dir(prior: bytes, record: bytes) -> bool:
    old, new = record_fields(prior), record_fields(record)
    both_dirs = stat.S_ISDIR(old[0]) and stat.S_ISDIR(new[0])
    return both_dirs and (old[7], old[8]) != (new[7], new[8])


def _differs(path: str, prior: bytes, record: bytes, before: StatIndex, after: StatIndex,
             mode: SnapshotMode) -> bool:
    """Whether two different records of `path` are a change in this mode."""
    old, new = record_fields(prior), record_fields(record)
    if stat.S_IFMT(old[0]) != stat.S_IFMT(new[0]):
        return True
    if mode is SnapshotMode.TIME:
        return old[5] != new[5]
    if mode is SnapshotMode.FULL:
        verdict = _full_verdict(path, old, new, prior, record, before, after)
        if verdict is not None:
            return verdict
    # redo: mode, uid, gid | size, mtime, ctime, inode | link target (nlink and dev ignored)
    return (old[:3] != new[:3] or old[4:8] != new[4:8]
            or link_target_bytes(prior) != link_target_bytes(record))


def _full_verdict(path: str, old: tuple[int, ...], new: tuple[int, ...], prior: bytes,
                  record: bytes, before: StatIndex, after: StatIndex) -> bool | None:
    """The `full` mode answer, or None to fall back to the `redo` comparison."""
    if old[:3] != new[:3]:
        return True
    kind = stat.S_IFMT(new[0])
    if kind == stat.S_IFDIR:
        return False
    if kind == stat.S_IFLNK:
        return link_target_bytes(prior) != link_target_bytes(record)
    if kind != stat.S_IFREG:
        return None
    if old[4] != new[4]:
        return True
    old_hash, new_hash = before.content_hash(path), after.content_hash(path)
    if old_hash is None or new_hash is None:
        return None
    return old_hash != new_hash


def _deletions(before: StatIndex, after: StatIndex, opaque: set[str]) -> list[Change]:
    """The topmost paths of `before` that are gone from `after`."""
    deleted: list[Change] = []
    present = after.mapping()
    for path in before.mapping():
        if path in present:
            continue
        parent = parent_of(path)
        if parent:
            parent_record = after.record(parent)
            if parent_record is None or not stat.S_ISDIR(record_fields(parent_record)[0]):
                continue  # the parent went too, or a non-directory replaced it
            if opaque and (parent in opaque or _covered(parent, opaque)):
                continue  # the opaque marker hides it
        deleted.append(Change(path, ChangeKind.DELETE))
    return deleted


def _with_hardlinks(changes: list[Change], after: StatIndex) -> list[Change]:
    """Turn added or modified paths that share an inode with an earlier path into hardlinks
    to the first such path in layer order."""
    linked = after.linked_paths()
    if not linked:
        return changes
    first: dict[tuple[int, int], str] = {}
    for path in sorted(linked, key=layer_order_key):
        fields = record_fields(after.record(path) or b"")
        first.setdefault((fields[8], fields[7]), path)
    linked_set = set(linked)
    result: list[Change] = []
    for change in changes:
        if change.path in linked_set and change.kind is not ChangeKind.DELETE:
            fields = record_fields(after.record(change.path) or b"")
            target = first[(fields[8], fields[7])]
            if target != change.path:
                change = Change(change.path, change.kind, hardlink_to=target)
        result.append(change)
    return result


def _parents(changes: list[Change]) -> tuple[str, ...]:
    """Ancestor directories of the changes that are not changes themselves, in layer order."""
    changed = {change.path for change in changes}
    parents: set[str] = set()
    for change in changes:
        path = change.path
        cut = path.rfind("/")
        while cut > 0:
            path = path[:cut]
            if path in changed or path in parents:
                break
            parents.add(path)
            cut = path.rfind("/")
    return tuple(sorted(parents, key=layer_order_key))
