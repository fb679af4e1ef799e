"""Root filesystems: contained path resolution and OCI layer extraction.

- `paths`: `Root`, a directory every path and operation is confined to.
- `extract`: `extract_layer`, applying a layer tar stream with whiteouts, hardlinks, ownership,
  modes and xattrs; what the file system cannot carry goes into a `MetadataMap`.
- `compression`, `tarstream`: the streaming readers both of the above and `core.context.archive`
  are built on.

The names below are loaded on first use (PEP 562), so importing one light submodule (`paths`,
`metadata`) does not load the extraction code, `zstandard` and `tarfile` with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_HOMES = {
    "Compression": "compression",
    "EntryKind": "tarstream",
    "EntryMetadata": "metadata",
    "LayerResult": "extract",
    "MetadataMap": "metadata",
    "Root": "paths",
    "clean_relative": "paths",
    "extract_layer": "extract",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
