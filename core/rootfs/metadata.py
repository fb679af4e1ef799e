"""The real metadata of paths whose on-disk state could not carry it.

Unprivileged extraction cannot chown, make device nodes or set `security.`/`trusted.` xattrs,
and keeps modes the builder can work with. What the image says is recorded here, keyed by the
root-relative path where the entry really is (symlinked parents resolved); the layer writer and
fakeroot seeding read it back. Paths absent from the map are exactly what `lstat` shows.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import RootfsError
from core.rootfs.tarstream import EntryKind

_VERSION = 1


@dataclass(frozen=True)
class EntryMetadata:
    """What a path is according to the image, where the file system differs."""

    kind: EntryKind  # never HARDLINK: a hardlink records the metadata of its inode
    mode: int  # permission bits with setuid/setgid/sticky
    uid: int
    gid: int
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": str(self.kind), "mode": self.mode, "uid": self.uid,
                                "gid": self.gid}
        if self.kind in (EntryKind.CHAR, EntryKind.BLOCK):
            data["dev"] = [self.devmajor, self.devminor]
        if self.xattrs:
            data["xattrs"] = {k: base64.b64encode(v).decode() for k, v in self.xattrs}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EntryMetadata:
        major, minor = data.get("dev", (0, 0))
        xattrs = tuple((k, base64.b64decode(v)) for k, v in data.get("xattrs", {}).items())
        return cls(kind=EntryKind(data["kind"]), mode=int(data["mode"]), uid=int(data["uid"]),
                   gid=int(data["gid"]), devmajor=int(major), devminor=int(minor),
                   xattrs=xattrs)


class MetadataMap(Mapping[str, EntryMetadata]):
    """Read-only mapping of root-relative path to `EntryMetadata`.

    Extraction takes one (from the layers below) and returns a new one; this object is never
    changed after it is made.
    """

    def __init__(self, entries: Mapping[str, EntryMetadata] | None = None) -> None:
        self._entries: dict[str, EntryMetadata] = dict(entries or {})

    def __getitem__(self, path: str) -> EntryMetadata:
        return self._entries[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MetadataMap({len(self._entries)} paths)"

    def to_json(self) -> str:
        """JSON text; paths with undecodable bytes keep them as `\\udcXX` escapes."""
        entries = {path: meta.to_json() for path, meta in sorted(self._entries.items())}
        return json.dumps({"version": _VERSION, "entries": entries}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> MetadataMap:
        try:
            data = json.loads(text)
            if data.get("version") != _VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            return cls({path: EntryMetadata.from_json(meta)
                        for path, meta in data["entries"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RootfsError(f"unreadable metadata map: {e}") from e

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to `path` atomically (a temporary file beside it, then rename)."""
        folder = os.path.dirname(os.fspath(path)) or "."
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".metadata-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self.to_json())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MetadataMap:
        try:
            with open(path, encoding="utf-8") as source:
                return cls.from_json(source.read())
        except OSError as e:
            raise RootfsError(f"cannot read metadata map {os.fspath(path)!r}: {e}") from e
