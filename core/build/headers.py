"""A stage's tree known from its layers' tar headers, without extracting a byte of content.

COPY, ADD and WORKDIR only need to know a few things about the tree they write into: which
directories exist (with their metadata, written unchanged into the new layer), which paths are
symlinks (a symlinked destination directory is entered), and the account files for `--chown`
names. `HeaderIndex` reads each layer once, front to back, keeping one small record per path
(OCI semantics: whiteouts and opaque markers hide lower layers' paths, hardlinks take their
target's metadata, missing parents are implied directories) and the text of `/etc/passwd` and
`/etc/group`. Memory grows with the number of paths, never with their content.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import RootfsError
from core.rootfs.compression import decompressed
from core.rootfs.paths import MAX_LINKS, clean_relative
from core.rootfs.tarstream import EntryKind, TarEntry, TarReader

ACCOUNT_FILES = frozenset({"etc/passwd", "etc/group"})
_TEXT_LIMIT = 4 << 20
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class HeaderNode:
    kind: EntryKind
    mode: int
    uid: int
    gid: int
    mtime_ns: int = 0
    linkname: str = ""


_IMPLIED_DIR = HeaderNode(EntryKind.DIR, 0o755, 0, 0)


class HeaderIndex:
    """Paths of a tree made of layers (build-local, updated layer by layer)."""

    def __init__(self) -> None:
        self.nodes: dict[str, HeaderNode] = {}
        self.texts: dict[str, bytes] = {}

    def apply_layer(self, source: BinaryIO) -> None:
        """Fold one layer (plain or compressed tar) into the index."""
        _, stream = decompressed(source)
        reader = TarReader(stream)
        written: set[str] = set()
        for entry in reader:
            path = clean_relative(entry.name)
            if not path:
                continue
            head, _, base = path.rpartition("/")
            if base == _OPAQUE:
                self._remove_below(head, keep=written)
            elif base.startswith(_WHITEOUT):
                self._remove(posixpath.join(head, base[len(_WHITEOUT):]) if head
                             else base[len(_WHITEOUT):], keep=written)
            else:
                self._add(path, entry, reader, written)
        reader.drain()

    def _add(self, path: str, entry: TarEntry, reader: TarReader, written: set[str]) -> None:
        self._imply_parents(path)
        self.texts.pop(path, None)
        if entry.kind is EntryKind.HARDLINK:
            target = clean_relative(entry.linkname)
            node = self.nodes.get(target) or HeaderNode(EntryKind.FILE, entry.mode, entry.uid,
                                                        entry.gid)
            if target in self.texts:
                self.texts[path] = self.texts[target]
        else:
            node = HeaderNode(entry.kind, entry.mode, entry.uid, entry.gid, entry.mtime_ns,
                              entry.linkname)
            if node.kind is EntryKind.FILE and path in ACCOUNT_FILES and \
                    entry.size <= _TEXT_LIMIT:
                self.texts[path] = reader.read_bytes(entry.size)
        if node.kind is not EntryKind.DIR:
            self._remove_below(path, keep=set())
        self.nodes[path] = node
        written.add(path)

    def _imply_parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        missing = []
        while parent and self.nodes.get(parent) is None:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for directory in missing:
            self.nodes[directory] = _IMPLIED_DIR

    def _remove(self, path: str, *, keep: set[str]) -> None:
        if path not in keep:
            self.nodes.pop(path, None)
            self.texts.pop(path, None)
        self._remove_below(path, keep=keep)

    def _remove_below(self, directory: str, *, keep: set[str]) -> None:
        prefix = f"{directory}/" if directory else ""
        doomed = [p for p in self.nodes if p.startswith(prefix) and p != directory
                  and p not in keep]
        for path in doomed:
            del self.nodes[path]
            self.texts.pop(path, None)

    def resolve(self, path: str, *, follow_final: bool = True) -> str:
        """`path` with the tree's symlinks followed inside the root (missing parts kept)."""
        todo = [p for p in reversed(path.split("/")) if p]
        done: list[str] = []
        links = 0
        while todo:
            part = todo.pop()
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/".join([*done, part])
            node = self.nodes.get(here)
            if node is not None and node.kind is EntryKind.SYMLINK and (todo or follow_final):
                links += 1
                if links > MAX_LINKS:
                    raise RootfsError(f"too many levels of symbolic links in {path!r}")
                if node.linkname.startswith("/"):
                    done = []
                todo.extend(p for p in reversed(node.linkname.split("/")) if p)
                continue
            done.append(part)
        return "/".join(done)

    def text(self, path: str) -> str:
        """The content of a small account file (resolved path), "" when unknown."""
        return self.texts.get(self.resolve(path), b"").decode("utf-8", "replace")
