"""Planning a COPY/ADD layer: which entries it holds, where they come from, who owns them.

The destination rules are fsutil's copy, as BuildKit's file op uses it:
- a relative destination is taken against WORKDIR; the destination is resolved inside the
  stage's tree with every symlink followed (a symlinked directory in the base is entered);
- a file source goes *into* the destination when it ends with `/` or is an existing
  directory, else it *becomes* the destination; a directory source copies its contents into
  the destination (created when missing);
- directories created on the way are 0755, owned by the `--chown` owner (root without it);
  existing directories on the way keep their metadata (they are written to the layer as they
  are, so extraction leaves them unchanged);
- copied entries keep their mode (or take `--chmod`) and their owner from the source (the
  build context's entries belong to root) unless `--chown` is given; a file cannot replace a
  directory; several sources need a directory destination.
The plan maps layer paths to entries; `write_plan` streams them to a layer tar in layer order
with hardlinks kept (paths sharing an inode in the source share it in the layer).

A `BlindView` knows nothing of the tree: it serves COPYs whose result cannot depend on it
(the destination is a directory by its form, no `--chown`), so that a COPY-only stage never
reads its base layers. The destination and its ancestors are then left out of the layer:
extraction keeps them as the base has them, follows a symlinked one, and creates missing ones
0755 root, which is what BuildKit's layer says. (What is not detected blind: a file copied over
a directory of the base, which BuildKit refuses.)
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core.build.copy_sources import SourceItem, SourceTree, walk_directory
from core.build.headers import HeaderIndex
from core.build.layers import Layer, LayerSettings, LayerSpool
from core.context.ignore import IgnoreMatcher
from core.errors import RootfsError, StepError
from core.rootfs.metadata import MetadataMap
from core.rootfs.paths import Root
from core.rootfs.tarstream import EntryKind
from core.snapshot.paths import layer_order_key
from core.snapshot.tarwriter import LayerTarWriter, MetadataOverride


@dataclass(frozen=True)
class Entry:
    """One layer entry: the file on disk it is read from, and the metadata it gets."""

    source: Path
    uid: int
    gid: int
    mode: int
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of a multiply linked file


@dataclass(frozen=True)
class DestNode:
    """What exists at a destination path: its kind and metadata, and a file on disk of the
    same kind (with the right mtime) that the layer writer can read."""

    is_dir: bool
    uid: int
    gid: int
    mode: int
    source: Path


class DestView(Protocol):
    """The destination stage's tree, as COPY and WORKDIR see it."""

    def resolve(self, path: str) -> str:
        """`path` (root-relative) with the tree's symlinks followed, all of them."""
        ...

    def node(self, path: str) -> DestNode | None:
        """What is at a resolved path (None: nothing)."""
        ...


@dataclass
class DiskView:
    """An extracted tree (None: the empty tree of a stage without layers)."""

    rootfs: Path | None
    metadata: MetadataMap = field(default_factory=MetadataMap)

    def resolve(self, path: str) -> str:
        clean = posixpath.normpath("/" + path).lstrip("/")
        if self.rootfs is None or not clean:
            return clean
        try:
            with Root(self.rootfs, clamp=True) as root:
                return root.resolve(clean)
        except RootfsError as error:
            raise StepError(f"cannot resolve destination {path!r}: {error}") from None

    def node(self, path: str) -> DestNode | None:
        if self.rootfs is None or not path:
            return None
        try:
            st = os.lstat(self.rootfs / path)
        except OSError:
            return None
        uid, gid, mode = st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)
        meta = self.metadata.get(path)
        if meta is not None:
            uid, gid, mode = meta.uid, meta.gid, meta.mode
        return DestNode(stat.S_ISDIR(st.st_mode), uid, gid, mode, self.rootfs / path)


@dataclass
class HeaderView:
    """A tree known from its layers' headers; `staging` holds on-disk stand-ins (one empty
    directory per existing directory the layer writes, with that directory's mtime)."""

    index: HeaderIndex
    staging: Path
    _stand_ins: dict[str, Path] = field(default_factory=dict)

    def resolve(self, path: str) -> str:
        try:
            return self.index.resolve(posixpath.normpath("/" + path).lstrip("/"))
        except RootfsError as error:
            raise StepError(f"cannot resolve destination {path!r}: {error}") from None

    def node(self, path: str) -> DestNode | None:
        found = self.index.nodes.get(path) if path else None
        if found is None:
            return None
        if found.kind is not EntryKind.DIR:
            return DestNode(False, found.uid, found.gid, found.mode, self.staging)
        stand_in = self._stand_ins.get(path)
        if stand_in is None:
            stand_in = self.staging / str(len(self._stand_ins))
            stand_in.mkdir()
            os.utime(stand_in, ns=(found.mtime_ns, found.mtime_ns))
            self._stand_ins[path] = stand_in
        return DestNode(True, found.uid, found.gid, found.mode, stand_in)


@dataclass
class BlindView:
    """A tree not looked at (see the module notes): nothing resolves, nothing exists."""

    def resolve(self, path: str) -> str:
        return posixpath.normpath("/" + path).lstrip("/")

    def node(self, path: str) -> DestNode | None:
        return None


@dataclass
class CopyPlan:
    """The entries of one COPY/ADD layer, keyed by layer path (build-local, mutable)."""

    view: DestView
    owner: tuple[int, int] | None  # --chown
    mode: int | None  # --chmod
    staging_dir: Path  # an empty directory: the on-disk stand-in for created directories
    entries: dict[str, Entry] = field(default_factory=dict)

    def ensure_dir(self, path: str) -> None:
        """Every directory down to `path` (resolved, root-relative): existing ones as they are,
        missing ones created 0755 for the owner."""
        if isinstance(self.view, BlindView):
            return  # left out: extraction keeps, follows or creates them
        parts = [p for p in path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            current = "/".join(parts[:depth])
            if current in self.entries:
                continue
            node = self.view.node(current)
            if node is None:
                uid, gid = self.owner or (0, 0)
                self.entries[current] = Entry(self.staging_dir, uid, gid, 0o755)
            elif node.is_dir:
                self.entries[current] = Entry(node.source, node.uid, node.gid, node.mode)
            else:
                raise StepError(f"cannot copy to non-directory: /{current}")

    def add(self, path: str, tree: SourceTree, relative: str, source: Path,
            st: os.stat_result) -> None:
        """One copied entry from a source tree."""
        existing = self.view.node(path)
        is_dir = stat.S_ISDIR(st.st_mode)
        if existing is not None and existing.is_dir and not is_dir:
            raise StepError(f"cannot replace to directory /{path} with file")
        if existing is not None and is_dir and not existing.is_dir:
            raise StepError(f"cannot copy to non-directory: /{path}")
        uid, gid, mode = tree.attributes(relative, st)
        if self.owner is not None:
            uid, gid = self.owner
        if self.mode is not None:
            mode = self.mode
        linked = stat.S_ISREG(st.st_mode) and st.st_nlink > 1
        inode = (st.st_dev, st.st_ino) if linked else None
        self.entries[path] = Entry(source, uid, gid, mode, inode)


def start_plan(staging: Path, view: Callable[[Path], DestView], *,
               owner: tuple[int, int] | None, mode: int | None = None) -> CopyPlan:
    """An empty plan in `staging` (an empty directory): `view` is given `staging/nodes` for
    its stand-in files, and `staging/dir` stands in for the directories the plan creates."""
    (staging / "nodes").mkdir()
    (staging / "dir").mkdir()
    return CopyPlan(view(staging / "nodes"), owner, mode, staging / "dir")


def write_layer(plan: CopyPlan, spool: LayerSpool, *, settings: LayerSettings,
                created_by: str) -> Layer | None:
    """The plan's entries as a new layer (None when the spool makes none)."""
    return spool.write(lambda writer: write_plan(plan, writer), root="/", settings=settings,
                       created_by=created_by, overrides=overrides_of(plan))


def absolute_dest(dest: str, workdir: str) -> tuple[str, bool]:
    """(root-relative destination, whether it names a directory) from the written form."""
    directory = dest.endswith("/") or dest in ("", ".") or dest.endswith("/.")
    joined = dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest}"
    return posixpath.normpath("/" + joined).lstrip("/"), directory


def plan_items(plan: CopyPlan, items: list[SourceItem], *, dest: str, dest_is_dir_hint: bool,
               excludes: IgnoreMatcher) -> None:
    """Add every item to `plan` under the destination (see the module notes)."""
    target = plan.view.resolve(dest)
    found = plan.view.node(target)
    into = dest_is_dir_hint or not target or (found is not None and found.is_dir)
    if len(items) > 1 and not into:
        raise StepError("When using COPY with more than one source file, the destination "
                        "must be a directory and end with a /")
    for item in items:
        if item.is_dir:
            _plan_directory(plan, item, target, excludes)
        elif into:
            plan.ensure_dir(target)
            _plan_file(plan, item, f"{target}/{item.name}" if target else item.name)
        else:
            plan.ensure_dir(posixpath.dirname(target))
            _plan_file(plan, item, target)
    if into and not items:
        plan.ensure_dir(target)  # BuildKit creates the destination even for an empty wildcard


def _plan_file(plan: CopyPlan, item: SourceItem, target: str) -> None:
    if not target:
        raise StepError("cannot copy a file onto the root directory")
    st = os.lstat(item.path)
    plan.add(target, item.tree, item.relative, item.path, st)


def _plan_directory(plan: CopyPlan, item: SourceItem, target: str,
                    excludes: IgnoreMatcher) -> None:
    plan.ensure_dir(target)
    for entry in walk_directory(item, excludes=excludes):
        path = f"{target}/{entry.subpath}" if target else entry.subpath
        plan.add(path, item.tree, entry.relative, entry.path, entry.st)


def overrides_of(plan: CopyPlan) -> dict[str, MetadataOverride]:
    return {path: MetadataOverride(uid=e.uid, gid=e.gid, mode=e.mode)
            for path, e in plan.entries.items()}


def write_plan(plan: CopyPlan, writer: LayerTarWriter) -> None:
    """Stream the plan's entries in layer order; repeated inodes become hardlinks."""
    first_of: dict[tuple[int, int], str] = {}
    for path in sorted(plan.entries, key=layer_order_key):
        entry = plan.entries[path]
        link = first_of.get(entry.inode) if entry.inode is not None else None
        if entry.inode is not None and link is None:
            first_of[entry.inode] = path
        writer.add(path, source=str(entry.source), hardlink_to=link)
