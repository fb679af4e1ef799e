"""Extracting an image layer (a tar stream, plain or compressed) onto a root filesystem.

The stream is read once, front to back, in fixed-size pieces: memory does not grow with the
size of the files in it. What does grow with the archive is per-path bookkeeping (paths written
by this layer, directory times, the metadata map), proportional to the total length of its
names — and so bounded by `max_bytes` when one is given.

Containment (see `core.rootfs.paths`): names are taken relative to the root (a leading `/` is
dropped); a name whose `..` climbs above the root is refused with `ArchiveError`, as Docker
refuses it, rather than clamped as containerd does, since only a hostile or broken layer has
one. Symlinks are created exactly as the layer says and are followed, as the image would see
them, only when they are parents of later entries: an absolute target means the root's `/`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import BudgetError
from core.rootfs.apply import Applier
from core.rootfs.compression import Compression, decompressed
from core.rootfs.metadata import MetadataMap
from core.rootfs.nodes import WritePolicy
from core.rootfs.paths import Root, printable
from core.rootfs.tarstream import TarReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerResult:
    """What extracting one layer did."""

    metadata: MetadataMap  # real metadata of every path the file system could not carry
    compression: Compression
    entries: int  # tar entries read (extension headers not counted)
    size: int  # plain tar bytes read


def extract_layer(source: BinaryIO, root: str | os.PathLike[str], *,
                  metadata: MetadataMap | None = None, privileged: bool | None = None,
                  max_bytes: int | None = None) -> LayerResult:
    """Apply the layer read from `source` to the directory `root`, with OCI semantics.

    `metadata` is the map the layers below left (it is not changed; the result has the new
    one). `privileged` (default: running as root) decides whether ownership, device nodes,
    setuid/setgid bits and `security.`/`trusted.` xattrs are put on disk or only recorded.
    `max_bytes` limits the plain (decompressed) size of the layer.

    Raises `ArchiveError` for a malformed or escaping layer, `BudgetError` when over budget or
    out of disk space, `RootfsError` for other file-system failures. A failed extraction leaves
    the root partly written: discard it.
    """
    if privileged is None:
        privileged = os.geteuid() == 0
    kind, stream = decompressed(source, max_bytes=max_bytes)
    records = dict(metadata or {})
    with Root(root, clamp=True) as fs:
        applier = Applier(fs, WritePolicy(privileged=privileged), whiteouts=True,
                          metadata=records)
        reader = TarReader(stream)
        count = 0
        for entry in reader:
            if max_bytes is not None and entry.size > max_bytes - reader.position:
                raise BudgetError(f"'{printable(entry.name)}' declares {entry.size} bytes, "
                                  f"more than the {max_bytes}-byte budget has left")
            applier.apply(entry, reader.read_payload)
            count += 1
        reader.drain()  # the rest of the compressed stream, so that its digest can be checked
        applier.finish()
    log.debug("extracted %d entries (%d bytes, %s) into %s", count, reader.position, kind,
              os.fspath(root))
    return LayerResult(MetadataMap(records), kind, count, reader.position)
