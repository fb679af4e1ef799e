"""One stage while it is built: its config, its layers and, when needed, its tree on disk.

The tree (`rootfs/` under the stage's directory) is extracted lazily: only when a step needs to
see it (RUN; `COPY --from` this stage; any file step of a stage that will RUN later, `eager`).
A stage with no layer at all has an empty tree and never needs extracting. Until then COPY and
WORKDIR learn what they need from the layers' tar headers, streamed (never stored), or, for a
COPY whose result cannot depend on the tree, from nothing at all (`blind`). Layers are read as
streams (`LayerSpool.open`): base layers go from the registry (or the base layer cache)
straight into the extractor. Once extracted, every new layer is applied as it is made (RUN
changes the tree in place; COPY layers are extracted onto it), so the tree always equals the
stage's layers. `metadata` is what an unprivileged extraction could not put on disk.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.build.bases import pulled_layer_errors
from core.build.config_steps import ConfigState
from core.build.layers import Layer, LayerSpool
from core.build.workdir import remove_tree
from core.errors import RootfsError
from core.image.manifest import Platform
from core.rootfs.metadata import EntryMetadata, MetadataMap
from core.rootfs.paths import Root

if TYPE_CHECKING:  # what reads or writes a tree is imported when a step does
    from core.build.copy_plan import DestView
    from core.build.headers import HeaderIndex
    from core.build.users import Accounts
    from core.snapshot.index import StatIndex
    from core.snapshot.tarwriter import MetadataOverride

log = logging.getLogger(__name__)

_ACCOUNT_FILE_LIMIT = 4 << 20


@dataclass
class Tree:
    """A tree made of layers, extracted on demand into `rootfs` (mutable, build-local)."""

    directory: Path
    layers: list[Layer] = field(default_factory=list)
    extracted: bool = False
    metadata: MetadataMap = field(default_factory=MetadataMap)
    index: StatIndex | None = None  # the rootfs as the last RUN left it (None: unknown)
    headers: HeaderIndex | None = None  # the tree from its layers' headers, while not extracted
    eager: bool = False  # extract for any file step (a RUN will need the tree anyway)

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"

    @property
    def empty(self) -> bool:
        """True while no layer exists: the tree is known without extracting anything."""
        return not self.layers

    def ensure(self, spool: LayerSpool) -> Path:
        """Extract every layer (once) and return the rootfs directory."""
        if not self.extracted:
            self.rootfs.mkdir(parents=True, exist_ok=True)
            os.chmod(self.rootfs, 0o755)  # the image's `/`, whatever the builder's umask
            for layer in self.layers:
                self._extract(spool, layer)
            self.extracted = True
            self.headers = None
        return self.rootfs

    def view(self, spool: LayerSpool, staging: Path, *, blind: bool = False) -> DestView:
        """How COPY and WORKDIR see the tree: on disk when extracted (or `eager`), else from
        the layers' headers, or empty. `blind`: the caller's result does not depend on the tree
        (see `BlindView`), so unless the tree is known already, nothing is read."""
        from core.build.copy_plan import BlindView, DiskView, HeaderView

        if self.eager and not self.empty:
            self.ensure(spool)
        if self.extracted:
            return DiskView(self.rootfs, self.metadata)
        if self.empty:
            return DiskView(None)
        if blind and self.headers is None:
            return BlindView()
        return HeaderView(self._headers(spool), staging)

    def _headers(self, spool: LayerSpool) -> HeaderIndex:
        from core.build.headers import HeaderIndex

        if self.headers is None:
            index = HeaderIndex()
            for layer in self.layers:
                _fold(index, spool, layer)
            self.headers = index
        return self.headers

    def add_layer(self, layer: Layer, spool: LayerSpool, *, applied: bool = False) -> None:
        """Append a layer; apply it to the extracted tree unless it is already there."""
        self.layers.append(layer)
        if self.extracted and not applied:
            self._extract(spool, layer)
            self.index = None
        elif self.headers is not None:
            _fold(self.headers, spool, layer)

    def absorb(self, layer: Layer, spool: LayerSpool, *, single_snapshot: bool) -> None:
        """Record a layer a step wrote; in a single-snapshot stage only apply it to the tree
        (the stage's one layer is made at its end) and drop the blob."""
        if not single_snapshot:
            self.add_layer(layer, spool)
            return
        self._extract(spool, layer)
        self.index = None
        if layer.path is not None:
            layer.path.unlink(missing_ok=True)

    def overrides(self) -> dict[str, MetadataOverride]:
        """What the layer writer must write instead of the disk's metadata."""
        return {path: _override(meta) for path, meta in self.metadata.items()}

    def _extract(self, spool: LayerSpool, layer: Layer) -> None:
        from core.rootfs.extract import extract_layer  # only a tree that is written needs it

        with pulled_layer_errors(layer), spool.open(layer) as source:
            result = extract_layer(source, self.rootfs, metadata=self.metadata,
                                   max_bytes=spool.extract_limit())
        spool.extracted(result.size)
        self.metadata = result.metadata
        log.debug("applied %s to %s (%d entries)", layer.digest, self.rootfs, result.entries)

    def take_over(self, other: Tree) -> None:
        """Adopt `other`'s extracted rootfs (its last user is this tree): a rename, no copy."""
        if not other.extracted:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.rootfs.exists():
            remove_tree(self.rootfs, strict=True)  # iterative: a tree can be 10,000 deep
        os.rename(other.rootfs, self.rootfs)
        other.extracted = False
        self.extracted = True
        self.headers = None
        self.metadata = other.metadata
        self.index = other.index = None  # an index names the directory it was taken of

    def accounts(self, spool: LayerSpool) -> Accounts:
        """The tree's /etc/passwd and /etc/group (from the headers when not extracted)."""
        from core.build.users import Accounts

        if self.empty:
            return Accounts()
        if self.eager:
            self.ensure(spool)
        if not self.extracted:
            headers = self._headers(spool)
            return Accounts.parse(headers.text("etc/passwd"), headers.text("etc/group"))
        return Accounts.parse(_read_in_root(self.rootfs, "etc/passwd"),
                              _read_in_root(self.rootfs, "etc/group"))


def _fold(index: HeaderIndex, spool: LayerSpool, layer: Layer) -> None:
    with pulled_layer_errors(layer), spool.open(layer) as source:
        index.apply_layer(source)


def _override(meta: EntryMetadata) -> MetadataOverride:
    from core.snapshot.index import FileType
    from core.snapshot.tarwriter import MetadataOverride

    kind = FileType(str(meta.kind)) if str(meta.kind) in _SPECIAL else None
    return MetadataOverride(uid=meta.uid, gid=meta.gid, mode=meta.mode & 0o7777, type=kind,
                            devmajor=meta.devmajor, devminor=meta.devminor,
                            xattrs=dict(meta.xattrs) if meta.xattrs else None)


_SPECIAL = frozenset({"char", "block", "fifo"})


def _read_in_root(root: Path, path: str) -> str:
    """A small text file of the tree, symlinks resolved inside it; "" when missing."""
    try:
        with Root(root, clamp=True) as fs:
            resolved = fs.resolve(path)
        with open(root / resolved, "rb") as handle:
            data = handle.read(_ACCOUNT_FILE_LIMIT)
    except (OSError, RootfsError):
        return ""
    return data.decode("utf-8", "replace")


@dataclass
class StageState:
    """A stage being built (or built): what later stages and the final image read."""

    index: int
    name: str
    platform: Platform
    config: ConfigState
    tree: Tree
    base_ref: str = ""  # the base image reference (for messages); "" for scratch/stage

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"
