"""Unpacking a build-context archive (tar; gzip, bzip2, xz or zstd compressed) safely.

The archive comes from whoever may upload to the bucket, so nothing in it is trusted:
- a name that is absolute, or whose `..` climbs above the top, is refused (`ArchiveError`
  naming the entry) — never clamped, never stripped;
- symlinks are created as they are written (COPY copies them as links), but a symlink used as
  the parent of a later entry must stay inside the destination: an absolute target or one that
  climbs out is refused;
- hardlinks must point at an entry already unpacked inside the destination;
- device nodes and FIFOs are left out (listed in the result), xattrs are ignored and files
  belong to the builder: no ownership is taken from the archive. Modes and times are kept.
Limits on the plain size and the number of entries raise `BudgetError`. A file that is not an
archive at all raises `ContextError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import ArchiveError, BudgetError, ContextError, RootfsError
from core.rootfs.apply import Applier
from core.rootfs.compression import Compression, decompressed
from core.rootfs.nodes import WritePolicy
from core.rootfs.paths import Root, printable
from core.rootfs.tarstream import EntryKind, TarEntry, TarReader

log = logging.getLogger(__name__)

_POLICY = WritePolicy(privileged=False, preserve_owner=False, preserve_xattrs=False)
_SPECIAL = (EntryKind.CHAR, EntryKind.BLOCK, EntryKind.FIFO)
#: how many skipped names a result lists
_MAX_LISTED = 100


@dataclass(frozen=True)
class UnpackedContext:
    """What unpacking a context archive did."""

    entries: int  # entries written
    size: int  # plain tar bytes read
    compression: Compression
    skipped: tuple[str, ...] = ()  # device nodes and FIFOs left out (printable names, first 100)


def unpack_context(source: BinaryIO, dest: str | os.PathLike[str], *,
                   max_bytes: int | None = None,
                   max_entries: int | None = None) -> UnpackedContext:
    """Unpack the archive read from `source` into the existing directory `dest`.

    `max_bytes` limits the plain (decompressed) size, `max_entries` the number of entries.
    """
    kind, stream = decompressed(source, max_bytes=max_bytes)
    try:
        with Root(dest, clamp=False) as root:
            applier = Applier(root, _POLICY, whiteouts=False)
            reader = TarReader(stream)
            count, skipped = _unpack(reader, applier, max_bytes=max_bytes,
                                     max_entries=max_entries)
            reader.drain()
            applier.finish()
    except ArchiveError:
        raise
    except RootfsError as e:
        raise ContextError(f"cannot unpack the build context: {e}") from e
    log.debug("unpacked %d context entries (%d bytes, %s)", count, reader.position, kind)
    return UnpackedContext(count, reader.position, kind, tuple(skipped[:_MAX_LISTED]))


def _unpack(reader: TarReader, applier: Applier, *, max_bytes: int | None,
            max_entries: int | None) -> tuple[int, list[str]]:
    count = 0
    skipped: list[str] = []
    for entry in _entries(reader):
        if max_entries is not None and count + len(skipped) >= max_entries:
            raise BudgetError(f"the build context has more than {max_entries} entries")
        if max_bytes is not None and entry.size > max_bytes - reader.position:
            raise BudgetError(f"'{printable(entry.name)}' declares {entry.size} bytes, more "
                              f"than the {max_bytes}-byte limit of the build context has left")
        if entry.kind in _SPECIAL:
            log.warning("context entry '%s' is a %s; left out", printable(entry.name),
                        entry.kind)
            skipped.append(printable(entry.name))
            continue
        applier.apply(entry, reader.read_payload)
        count += 1
    return count, skipped


def _entries(reader: TarReader) -> Iterator[TarEntry]:
    """The entries of `reader`, once the stream has shown it is an archive at all."""
    entries = iter(reader)
    try:
        first = next(entries, None)
    except ArchiveError as e:
        raise ContextError(f"the build context is not a tar archive (plain, gzip, bzip2, xz "
                           f"or zstd): {e}") from e
    if first is None:
        if reader.position == 0:
            raise ContextError("the build context is empty: not an archive")
        return
    yield first
    yield from entries
