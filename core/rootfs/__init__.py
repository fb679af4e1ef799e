"""Root filesystems: contained path resolution and OCI layer extraction.

- `paths`: `Root`, a directory every path and operation is confined to.
- `extract`: `extract_layer`, applying a layer tar stream with whiteouts, hardlinks, ownership,
  modes and xattrs; what the file system cannot carry goes into a `MetadataMap`.
- `compression`, `tarstream`: the streaming readers both of the above and `core.context.archive`
  are built on.
"""

from core.rootfs.compression import Compression
from core.rootfs.extract import LayerResult, extract_layer
from core.rootfs.metadata import EntryMetadata, MetadataMap
from core.rootfs.paths import Root, clean_relative
from core.rootfs.tarstream import EntryKind

__all__ = [
    "Compression",
    "EntryKind",
    "EntryMetadata",
    "LayerResult",
    "MetadataMap",
    "Root",
    "clean_relative",
    "extract_layer",
]
