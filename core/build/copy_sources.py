"""Where COPY/ADD sources come from: trees seen through `core.context.files.ContextFiles`.

A `SourceTree` is a directory seen as a root: the build context (with its `.dockerignore`, every
entry owned by root, as BuildKit receives it), a stage's or an image's extracted tree (real
owners, corrected by the metadata map of an unprivileged extraction; no ignore file applies),
or a staging directory (heredocs, downloads, unpacked archives). Matching and walking are
`ContextFiles`' (BuildKit's rules: symlinks of the source path followed inside the root,
Go `filepath.Match` wildcards, an empty wildcard match is no error).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.context.files import ContextEntry, ContextFiles, EntryKind
from core.context.ignore import IgnoreMatcher
from core.errors import ContextError, StepError
from core.rootfs.metadata import MetadataMap


@dataclass(frozen=True)
class SourceTree:
    """A tree COPY reads from. `owner`: every entry belongs to this (uid, gid)."""

    files: ContextFiles
    label: str  # for messages: "build context", "stage builder", ...
    metadata: MetadataMap | None = None
    owner: tuple[int, int] | None = None

    @classmethod
    def plain(cls, root: Path, label: str, *, metadata: MetadataMap | None = None,
              owner: tuple[int, int] | None = None) -> SourceTree:
        return cls(ContextFiles(root, IgnoreMatcher()), label, metadata, owner)

    @property
    def root(self) -> Path:
        return self.files.root

    def attributes(self, relative: str, st: os.stat_result) -> tuple[int, int, int]:
        """(uid, gid, permission bits) of an entry as the image sees it."""
        if self.owner is not None:
            return self.owner[0], self.owner[1], stat.S_IMODE(st.st_mode)
        if self.metadata is not None and relative in self.metadata:
            meta = self.metadata[relative]
            return meta.uid, meta.gid, meta.mode
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


@dataclass(frozen=True)
class SourceItem:
    """One matched source: `relative` is where its content is (symlinks followed, "" for the
    root), `name` the base name it is copied under."""

    tree: SourceTree
    relative: str
    name: str
    is_dir: bool

    @property
    def path(self) -> Path:
        return self.tree.root / self.relative if self.relative else self.tree.root


def match_sources(tree: SourceTree, pattern: str) -> list[SourceItem]:
    """What one source word names in `tree` (nothing for a wildcard matching nothing)."""
    try:
        matches = tree.files.resolve_sources([pattern])
    except ContextError as error:
        raise StepError(f"{error} in {tree.label}") from None
    items = []
    for match in matches:
        relative = "" if str(match.resolved) == "." else str(match.resolved)
        name = match.path.name or tree.root.name
        items.append(SourceItem(tree, relative, name, match.is_dir))
    return items


@dataclass(frozen=True)
class WalkEntry:
    """One entry below a directory source: `subpath` relative to that directory."""

    subpath: str
    relative: str  # relative to the tree's root (metadata lookups)
    path: Path
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def walk_directory(item: SourceItem, *, excludes: IgnoreMatcher) -> Iterator[WalkEntry]:
    """Entries below a directory item, parents first; `--exclude` patterns match subpaths."""
    try:
        for entry in item.tree.files.walk(item.relative or "."):
            subpath = str(entry.subpath)
            if _excluded(excludes, subpath, entry):
                continue
            yield WalkEntry(subpath, str(entry.path), item.tree.root / str(entry.path),
                            entry.stat)
    except ContextError as error:
        raise StepError(f"{error} in {item.tree.label}") from None


def _excluded(excludes: IgnoreMatcher, subpath: str, entry: ContextEntry) -> bool:
    if not excludes.patterns or not excludes.matches(subpath):
        return False
    return not (entry.kind is EntryKind.DIR and excludes.must_walk(subpath))
