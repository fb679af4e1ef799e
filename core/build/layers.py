"""Layers of the image being built: where each blob lives, and how new layers are written.

A `Layer` is a descriptor plus its diff_id, found either in a registry repository (base layers,
until fetched) or in a spool file under the work dir's `layers/` (new layers, fetched base
layers). `LayerSpool` owns that directory: it names files by digest, fetches base blobs once,
and writes new layers: a `LayerTarWriter` filled by the caller streams into a `LayerWriter`
(compression and both digests in one pass) into a temporary file, renamed to its digest.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from core.build.options import Compression, ImageFormat
from core.errors import BuildError
from core.image.digest import digest_hex
from core.image.manifest import Descriptor
from core.image.mediatypes import layer_media_type
from core.image.reference import Repository
from core.registry import RegistryClient
from core.snapshot.compress import Compression as BlobCompression
from core.snapshot.compress import LayerWriter
from core.snapshot.tarwriter import LayerTarWriter, MetadataOverride

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layer:
    """One layer: `remote` is where a base layer can be fetched or mounted from; `path` the
    local blob file once there is one."""

    descriptor: Descriptor
    diff_id: str
    created_by: str = ""
    remote: Repository | None = None
    path: Path | None = None

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size


@dataclass(frozen=True)
class LayerSettings:
    """How new layers are written."""

    image_format: ImageFormat
    compression: Compression
    level: int | None
    epoch: int | None  # mtimes newer than this are clamped to it (or all set, see clamp)
    clamp: bool = True

    @property
    def media_type(self) -> str:
        return layer_media_type(oci=self.image_format == "oci", compression=self.compression)


Fill = Callable[[LayerTarWriter], None]


class LayerSpool:
    """The `layers/` directory of one build (used from the build's thread only)."""

    def __init__(self, directory: Path, registry: RegistryClient | None) -> None:
        self.directory = directory
        self.registry = registry

    def blob_path(self, digest: str) -> Path:
        return self.directory / digest_hex(digest)

    def local(self, layer: Layer) -> Layer:
        """The layer with a local blob file, fetched from its repository if needed."""
        if layer.path is not None and layer.path.exists():
            return layer
        target = self.blob_path(layer.digest)
        if not target.exists():
            self._fetch(layer, target)
        return replace(layer, path=target)

    def _fetch(self, layer: Layer, target: Path) -> None:
        if layer.remote is None or self.registry is None:
            raise BuildError(f"layer {layer.digest} has no local copy and no registry source")
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".fetch-")
        try:
            with os.fdopen(fd, "wb") as sink:
                self.registry.fetch_blob(layer.remote, layer.digest, sink, size=layer.size)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        log.info("fetched layer %s (%d bytes) from %s", layer.digest, layer.size, layer.remote)

    def write(self, fill: Fill, *, root: str, settings: LayerSettings, created_by: str,
              overrides: Mapping[str, MetadataOverride] | None = None) -> Layer | None:
        """Write a new layer; None when `fill` added no entry (nothing changed)."""
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".layer-")
        try:
            with os.fdopen(fd, "wb") as sink:
                writer = LayerWriter(sink, compression=BlobCompression(settings.compression),
                                     level=settings.level)
                try:
                    tar = LayerTarWriter(writer, root=root, overrides=overrides,
                                         epoch=settings.epoch, clamp_mtime=settings.clamp)
                    fill(tar)
                    summary = tar.close()
                    digests = writer.close()
                except BaseException:
                    writer.abort()
                    raise
            if summary.entries == 0:
                Path(temporary).unlink()
                return None
            target = self.blob_path(digests.digest)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        descriptor = Descriptor(settings.media_type, digests.digest, digests.size)
        log.info("layer %s: %d entries, %d bytes (%d plain)", digests.digest, summary.entries,
                 digests.size, digests.uncompressed_size)
        return Layer(descriptor, digests.diff_id, created_by=created_by, path=target)
