"""Layers of the image being built: where each blob lives, and how new layers are written.

A `Layer` is a descriptor plus its diff_id. A base (or cached) layer names the repository it
can be fetched or mounted from (`remote`); a new layer may have a spool file under the work
dir's `layers/` (`path`), and the repositories it was streamed to are in the build's
`BlobLocations`. `LayerSpool` owns that directory and the ways to reach a blob:
- `open` reads a layer as a stream: its spool file, the base layer cache, or straight from a
  registry (base layers are never stored to be extracted or read for headers);
- `local` makes a spool file (only local outputs need one);
- `write` makes a new layer: a `LayerTarWriter` filled by the caller streams into a
  `LayerWriter` (compression and both digests in one pass), whose compressed output goes, as
  it is produced, to every target the current `LayerPolicy` names: a streamed upload per
  registry (see `core.build.uploads`) and/or a spool file. Nothing holds a whole layer in
  memory, and a layer is compressed once however many places it goes.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from core.build.budget import DiskBudget
from core.build.options import Compression, ImageFormat
from core.build.remote import open_blob
from core.build.uploads import StreamTarget, Uploads
from core.cache.base import BaseLayerCache
from core.errors import BudgetError, BuildError
from core.image.digest import digest_hex
from core.image.manifest import Descriptor
from core.image.mediatypes import layer_media_type
from core.image.reference import Repository
from core.registry import RegistryClient

if TYPE_CHECKING:  # the layer writers are imported when a layer is made
    from core.snapshot.compress import LayerDigests
    from core.snapshot.tarwriter import LayerTarWriter, MetadataOverride

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layer:
    """One layer: `remote` is where a base (or cached) layer can be fetched or mounted from;
    `path` the local blob file once there is one."""

    descriptor: Descriptor
    diff_id: str
    created_by: str = ""
    remote: Repository | None = None
    path: Path | None = None
    plain_size: int = 0  # bytes of the uncompressed tar, when known (new layers)

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size


@dataclass(frozen=True)
class StepLayer:
    """What a file-system step (RUN, COPY/ADD, WORKDIR) made: its history text, and its layer
    (None when it changed nothing)."""

    created_by: str
    layer: Layer | None


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


@dataclass(frozen=True)
class LayerPolicy:
    """Where the bytes of the next new layers go: streamed to one repository per registry,
    and/or kept as a spool file (always kept when streamed nowhere); `cache_to` is a copy for
    the layer cache whose failure only loses that copy. `discard`: the step's changes are on
    disk already and no one will read them as a layer (a RUN of a stage outside the image
    that no stage is built on), so no layer is made."""

    stream_to: tuple[Repository, ...] = ()
    keep: bool = True
    cache_to: Repository | None = None
    discard: bool = False  # nobody will read the layer: do not write it at all


Fill = Callable[["LayerTarWriter"], None]


class _Fanout:
    """The compressed layer's sink: every stream target, and the spool file if any."""

    def __init__(self, targets: list[StreamTarget], file: BinaryIO | None) -> None:
        self.targets = targets
        self.file = file

    def __call__(self, chunk: bytes) -> None:
        for target in self.targets:
            target.write(chunk)
        if self.file is not None:
            self.file.write(chunk)


class LayerSpool:
    """The `layers/` directory of one build and the ways to its blobs (used from the build's
    thread; uploads run on their own threads)."""

    def __init__(self, directory: Path, registry: RegistryClient | None, *,
                 uploads: Uploads | None = None, base_cache: BaseLayerCache | None = None,
                 budget: DiskBudget | None = None) -> None:
        self.directory = directory
        self.registry = registry
        self.uploads = uploads
        self.base_cache = base_cache
        self.budget = budget
        self.policy = LayerPolicy()

    def blob_path(self, digest: str) -> Path:
        return self.directory / digest_hex(digest)

    def extract_limit(self) -> int | None:
        """Plain bytes an extraction may still write (None: no budget)."""
        return self.budget.remaining() if self.budget is not None else None

    def extracted(self, count: int) -> None:
        """Count what an extraction wrote against the disk budget."""
        if self.budget is not None:
            self.budget.add(count)

    def local(self, layer: Layer) -> Layer:
        """The layer with a local blob file, copied or fetched if needed."""
        if layer.path is not None and layer.path.exists():
            return layer
        target = self.blob_path(layer.digest)
        if not target.exists():
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".fetch-")
            try:
                with os.fdopen(fd, "wb") as sink, self.open(layer) as source:
                    shutil.copyfileobj(source, sink, 1 << 20)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            log.info("fetched layer %s (%d bytes)", layer.digest, layer.size)
        return replace(layer, path=target)

    def open(self, layer: Layer) -> BinaryIO:
        """The layer's blob as a stream: local file, base layer cache, or a registry."""
        for path in (layer.path, self.blob_path(layer.digest)):
            if path is not None and path.exists():
                return path.open("rb")
        if self.base_cache is not None:
            cached = self.base_cache.open(layer.digest, layer.size)
            if cached is not None:
                return cached
        where = self.source(layer)
        registry = self.registry
        if where is None or registry is None:
            raise BuildError(f"layer {layer.digest} has no local copy and no registry source")
        tee = None
        if self.base_cache is not None and layer.remote is not None:
            tee = self.base_cache.writer(layer.digest, layer.size)
        log.info("streaming layer %s (%d bytes) from %s", layer.digest, layer.size, where)
        return open_blob(lambda sink: registry.fetch_blob(where, layer.digest, sink,
                                                          size=layer.size),
                         name=layer.digest, tee=tee)

    def source(self, layer: Layer) -> Repository | None:
        """A repository holding the blob (a streamed layer's, once its upload is done)."""
        if layer.remote is not None:
            return layer.remote
        if self.uploads is None:
            return None
        self.uploads.wait_for(layer.digest)
        found = self.uploads.locations.where(layer.digest)
        return found[0] if found else None

    def write(self, fill: Fill, *, root: str, settings: LayerSettings, created_by: str,
              overrides: Mapping[str, MetadataOverride] | None = None) -> Layer | None:
        """Write a new layer where the policy says; None when `fill` added no entry (or the
        policy discards the layer)."""
        policy = self.policy
        if policy.discard:
            log.info("layer of %r not made: nothing outside this stage's tree reads it",
                     created_by[:60])
            return None
        targets: list[StreamTarget] = []
        temporary: Path | None = None
        file: BinaryIO | None = None
        try:
            if self.uploads is not None:
                wanted = [(repo, False) for repo in policy.stream_to]
                if policy.cache_to is not None:
                    wanted.append((policy.cache_to, True))
                targets = self.uploads.start(wanted)
            if policy.keep or not any(not target.optional for target in targets):
                fd, name = tempfile.mkstemp(dir=self.directory, prefix=".layer-")
                temporary, file = Path(name), os.fdopen(fd, "wb")
            entries, digests = _compress(_Fanout(targets, file), fill, root=root,
                                         settings=settings, overrides=overrides)
            if file is not None:
                file.close()
        except BaseException as error:
            for target in targets:
                target.abort()
            _discard(file, temporary)
            if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                raise BudgetError(f"no space left for a layer: {error}") from None
            raise
        if entries == 0:
            for target in targets:
                target.abort()
            _discard(file, temporary)
            return None
        return self._finish(digests, targets, temporary, settings, created_by)

    def _finish(self, digests: LayerDigests, targets: list[StreamTarget],
                temporary: Path | None, settings: LayerSettings, created_by: str) -> Layer:
        for target in targets:
            assert self.uploads is not None
            self.uploads.track(digests.digest, target, target.finish(digests.digest))
        path = None
        if temporary is not None:
            path = self.blob_path(digests.digest)
            os.replace(temporary, path)
        descriptor = Descriptor(settings.media_type, digests.digest, digests.size)
        log.info("layer %s: %d bytes (%d plain)%s%s", digests.digest, digests.size,
                 digests.uncompressed_size,
                 "; streaming to " + ", ".join(str(t.repository) for t in targets)
                 if targets else "", "; kept" if path is not None else "")
        return Layer(descriptor, digests.diff_id, created_by=created_by, path=path,
                     plain_size=digests.uncompressed_size)

    def close(self) -> None:
        """Stop background uploads (after a failure; a finished build waited for them)."""
        if self.uploads is not None:
            self.uploads.close()


def _compress(sink: _Fanout, fill: Fill, *, root: str, settings: LayerSettings,
              overrides: Mapping[str, MetadataOverride] | None) -> tuple[int, LayerDigests]:
    from core.snapshot.compress import Compression as BlobCompression
    from core.snapshot.compress import LayerWriter
    from core.snapshot.tarwriter import LayerTarWriter

    writer = LayerWriter(sink, compression=BlobCompression(settings.compression),
                         level=settings.level)
    try:
        tar = LayerTarWriter(writer, root=root, overrides=overrides, epoch=settings.epoch,
                             clamp_mtime=settings.clamp)
        fill(tar)
        summary = tar.close()
        digests = writer.close()
    except BaseException:
        writer.abort()
        raise
    return summary.entries, digests


def _discard(file: BinaryIO | None, temporary: Path | None) -> None:
    if file is not None:
        file.close()
    if temporary is not None:
        temporary.unlink(missing_ok=True)
