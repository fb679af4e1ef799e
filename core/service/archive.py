"""One pass over a downloaded context archive before it is built.

The pass finds the optional `bucketbuild.json` at the archive root (it decides what to build,
so it must be read before the build starts), notes which names are links, and fails early
with a `ContextError` on an archive that is corrupt or not an archive at all. Links matter
because the Dockerfile is read by path: a Dockerfile that is (or sits under) a symlink could
make the builder read one of the function's own files.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from core.errors import ArchiveError, ContextError
from core.rootfs.compression import decompressed
from core.rootfs.tarstream import EntryKind, TarReader
from core.service.overrides import ARCHIVE_SETTINGS
from core.service.settings import SettingsError

MAX_SETTINGS_BYTES = 64 * 1024
_LINKS = (EntryKind.SYMLINK, EntryKind.HARDLINK)


@dataclass(frozen=True)
class ArchiveScan:
    settings: bytes | None  # the content of bucketbuild.json, if the archive has one
    links: frozenset[str]  # normalised names of symlink and hardlink entries
    entries: int


def scan_archive(path: Path, *, max_bytes: int | None = None) -> ArchiveScan:
    """Read the archive at `path` once (any supported compression)."""
    settings: bytes | None = None
    links: set[str] = set()
    count = 0
    try:
        with path.open("rb") as handle:
            _, stream = decompressed(handle, max_bytes=max_bytes)
            reader = TarReader(stream)
            for entry in reader:
                count += 1
                name = entry_name(entry.name)
                if entry.kind in _LINKS:
                    links.add(name)
                elif name == ARCHIVE_SETTINGS and entry.kind is EntryKind.FILE:
                    settings = _payload(reader, entry.size)
    except ArchiveError as exc:
        raise ContextError(f"the build context is not a readable tar archive: {exc}") from None
    except OSError as exc:
        raise ContextError(f"cannot read the context archive: {exc}") from None
    if count == 0:
        raise ContextError("the build context archive is empty or not a tar archive")
    if ARCHIVE_SETTINGS in links:
        raise SettingsError(f"{ARCHIVE_SETTINGS} must be a regular file, not a link")
    return ArchiveScan(settings=settings, links=frozenset(links), entries=count)


def entry_name(name: str) -> str:
    """An archive member name as a clean relative path (`./a//b/` -> `a/b`)."""
    return posixpath.normpath("/" + name).lstrip("/") or "."


def _payload(reader: TarReader, size: int) -> bytes:
    if size > MAX_SETTINGS_BYTES:
        raise SettingsError(f"{ARCHIVE_SETTINGS} is {size} bytes; the limit is "
                            f"{MAX_SETTINGS_BYTES}")
    return reader.read_bytes(size)


def check_dockerfile(scan: ArchiveScan, *, sub_path: str, dockerfile: str) -> None:
    """Refuse a Dockerfile path that is a link or passes through one."""
    path = entry_name(posixpath.join(sub_path or ".", dockerfile))
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        if prefix in scan.links:
            raise ContextError(f"the Dockerfile path {path!r} goes through the link "
                               f"{prefix!r} in the archive; links are not followed there")
