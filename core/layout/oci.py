"""OCI image layout directories: `oci-layout`, `index.json` and `blobs/sha256/`.

A writer adds one image (its layers, config and manifest) and names it in `index.json` with
the `org.opencontainers.image.ref.name` annotation; images already in the layout stay. A reader
follows index.json -> manifest -> config -> layer files.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from core.errors import ImageError
from core.image import mediatypes as mt
from core.image.canonical import parse_json_object
from core.image.config import ImageConfig, parse_image_config
from core.image.digest import digest_hex
from core.image.manifest import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    descriptor_for,
    parse_index,
    parse_manifest,
    parse_manifest_or_index,
)
from core.image.platform import select_manifest
from core.layout.blobs import Blob, atomic_file, copy_verified, open_source

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"
#: manifests and configs are read whole; anything larger is refused as not plausibly one
MAX_METADATA_BYTES = 16 << 20
#: the OCI image-layout grammar for ref names (`v1.0`, `latest`, `registry/repo:tag`)
_REF_NAME = re.compile(r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
                       r"(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*")


@dataclass(frozen=True)
class OciImage:
    """One image read from a layout; layer content stays on disk at `layer_paths`."""

    descriptor: Descriptor
    manifest: Manifest
    manifest_bytes: bytes
    config: ImageConfig
    config_bytes: bytes
    layer_paths: tuple[Path, ...]


@dataclass(frozen=True)
class OciLayout:
    """An OCI image layout rooted at `root`."""

    root: Path

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest_hex(digest)

    def has_blob(self, descriptor: Descriptor) -> bool:
        path = self.blob_path(descriptor.digest)
        return path.is_file() and path.stat().st_size == descriptor.size

    def write_blob(self, blob: Blob) -> Path:
        """Store a blob unless an intact copy (same digest and size) is already there."""
        path = self.blob_path(blob.descriptor.digest)
        if not self.has_blob(blob.descriptor):
            with open_source(blob.source) as stream, atomic_file(path) as target:
                copy_verified(stream, target, blob.descriptor)
        return path

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        try:
            return self.blob_path(descriptor.digest).open("rb")
        except FileNotFoundError:
            raise ImageError(f"{self.root}: blob {descriptor.digest} is missing") from None

    def read_blob(self, descriptor: Descriptor) -> bytes:
        """Read and verify a small blob (a manifest, index or config)."""
        if descriptor.size > MAX_METADATA_BYTES:
            raise ImageError(f"{self.root}: {descriptor.media_type} {descriptor.digest} "
                             f"is too large ({descriptor.size} bytes)")
        with self.open_blob(descriptor) as stream:
            data = stream.read(MAX_METADATA_BYTES + 1)
        if descriptor_for(data, descriptor.media_type).digest != descriptor.digest:
            raise ImageError(f"{self.root}: blob {descriptor.digest} does not match its digest")
        return data

    def read_index(self) -> Index:
        """The top-level index; an empty one if the layout does not exist yet."""
        path = self.root / "index.json"
        if not path.exists():
            return Index(mt.OCI_INDEX, ())
        return parse_index(path.read_bytes(), mt.OCI_INDEX)

    def ensure(self) -> None:
        """Create the layout skeleton, or check that an existing one is a version we write."""
        marker = self.root / "oci-layout"
        if marker.exists():
            version = parse_json_object(marker.read_bytes(), "oci-layout").get("imageLayoutVersion")
            if version != LAYOUT_VERSION:
                raise ImageError(f"{self.root}: unsupported OCI layout version {version!r}")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with atomic_file(marker) as stream:
            stream.write(json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())

    def add_to_index(self, descriptor: Descriptor, ref_name: str | None) -> None:
        """Point `ref_name` (if any) at `descriptor`, keeping every other entry."""
        if ref_name is not None:
            check_ref_name(ref_name)
            descriptor = _with_annotation(descriptor, REF_NAME, ref_name)
        self.ensure()
        # Lock the layout directory itself: it is the one inode every writer shares (the
        # oci-layout marker may be replaced by a concurrent first writer's atomic rename).
        lock = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            kept = tuple(d for d in self.read_index().manifests
                         if not _same_entry(d, descriptor, ref_name))
            index = Index(mt.OCI_INDEX, (*kept, descriptor))
            with atomic_file(self.root / "index.json") as stream:
                stream.write(index.to_json())
        finally:
            os.close(lock)


def write_oci_image(root: Path, *, manifest: bytes, config: bytes, layers: Sequence[Blob],
                    ref_name: str | None = None, platform: Platform | None = None,
                    ) -> Descriptor:
    """Add one image to the layout at `root` (created if needed); return its descriptor.

    `layers` must match the manifest's layer descriptors in order; blobs are written before
    the manifest, and index.json last, so an interrupted write never names a partial image.
    """
    if ref_name is not None:
        check_ref_name(ref_name)
    parsed = parse_manifest(manifest)
    _check_matches(parsed, config, layers)
    layout = OciLayout(root)
    layout.ensure()
    for layer in layers:
        layout.write_blob(layer)
    layout.write_blob(Blob(parsed.config, config))
    descriptor = descriptor_for(manifest, parsed.media_type, platform=platform)
    layout.write_blob(Blob(descriptor, manifest))
    layout.add_to_index(descriptor, ref_name)
    return descriptor


def read_oci_image(root: Path, *, ref_name: str | None = None,
                   platform: Platform | None = None) -> OciImage:
    """Read the image `ref_name` names (or the only one), picking `platform` from an index."""
    layout = OciLayout(root)
    if not (root / "index.json").is_file():
        raise ImageError(f"{root}: not an OCI image layout (no index.json)")
    descriptor = _find(layout.read_index(), ref_name, root)
    document = parse_manifest_or_index(layout.read_blob(descriptor), descriptor.media_type)
    if isinstance(document, Index):
        if platform is None:
            raise ImageError(f"{root}: {ref_name or 'the image'} is an index; name a platform")
        descriptor = select_manifest(document, platform)
    manifest_bytes = layout.read_blob(descriptor)
    manifest = parse_manifest(manifest_bytes, descriptor.media_type)
    config_bytes = layout.read_blob(manifest.config)
    paths = tuple(layout.blob_path(layer.digest) for layer in manifest.layers)
    missing = [layer.digest for layer, path in zip(manifest.layers, paths, strict=True)
               if not path.is_file()]
    if missing:
        raise ImageError(f"{root}: layer blobs missing: {', '.join(missing)}")
    return OciImage(descriptor, manifest, manifest_bytes, parse_image_config(config_bytes),
                    config_bytes, paths)


def check_ref_name(ref_name: str) -> None:
    """Refuse a name the OCI image-layout grammar does not allow."""
    if not _REF_NAME.fullmatch(ref_name):
        raise ImageError(f"invalid OCI layout ref name {ref_name!r} (letters, digits, "
                         "separators - . _ : @ + and / between components)")


def _check_matches(manifest: Manifest, config: bytes, layers: Sequence[Blob]) -> None:
    actual = descriptor_for(config, manifest.config.media_type)
    if (actual.digest, actual.size) != (manifest.config.digest, manifest.config.size):
        raise ImageError(f"config bytes do not match the manifest's config descriptor "
                         f"{manifest.config.digest}")
    given = [(b.descriptor.digest, b.descriptor.size) for b in layers]
    wanted = [(d.digest, d.size) for d in manifest.layers]
    if given != wanted:
        raise ImageError(f"layers given ({len(given)}) do not match the manifest's "
                         f"{len(wanted)} layer descriptors")


def _find(index: Index, ref_name: str | None, root: Path) -> Descriptor:
    if ref_name is None:
        if len(index.manifests) != 1:
            raise ImageError(f"{root}: holds {len(index.manifests)} images; name one")
        return index.manifests[0]
    for descriptor in index.manifests:
        if (descriptor.annotations or {}).get(REF_NAME) == ref_name:
            return descriptor
    names = sorted(str((d.annotations or {}).get(REF_NAME)) for d in index.manifests
                   if REF_NAME in (d.annotations or {}))
    raise ImageError(f"{root}: no image named {ref_name!r}; names: {', '.join(names) or 'none'}")


def _with_annotation(descriptor: Descriptor, key: str, value: str) -> Descriptor:
    annotations = MappingProxyType({**(descriptor.annotations or {}), key: value})
    return Descriptor(descriptor.media_type, descriptor.digest, descriptor.size,
                      platform=descriptor.platform, annotations=annotations,
                      urls=descriptor.urls, artifact_type=descriptor.artifact_type)


def _same_entry(old: Descriptor, new: Descriptor, ref_name: str | None) -> bool:
    """An entry the new one replaces: same ref name, or the same unnamed image."""
    old_name = (old.annotations or {}).get(REF_NAME)
    if ref_name is not None:
        return old_name == ref_name
    return old_name is None and old.digest == new.digest
