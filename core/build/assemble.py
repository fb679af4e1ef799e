"""The final image: config (diff_ids, history, platform, created, labels) and manifest.

Docker v2 schema 2 by default, OCI with `--image-format oci`. Base layers keep their bytes; only
their media type follows the manifest's family (gzip and plain layers exist in both; a zstd
base layer needs an OCI manifest). `created` is the build time, or the epoch of a reproducible
build (`SOURCE_DATE_EPOCH`, or 0 for `--reproducible`); history entries of this build get the
same time, entries inherited from the base keep theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType

from core.build.layers import Layer
from core.build.options import ImageFormat
from core.errors import BuildError, UsageError
from core.image import mediatypes as mt
from core.image.config import ImageConfig, format_created
from core.image.manifest import Descriptor, Manifest, Platform, descriptor_for


@dataclass(frozen=True)
class AssembledImage:
    """Everything the outputs need: bytes and descriptors of config and manifest, layers."""

    config: bytes
    config_descriptor: Descriptor
    manifest: bytes
    media_type: str
    layers: tuple[Layer, ...]  # descriptors in the manifest's media types

    @property
    def digest(self) -> str:
        return descriptor_for(self.manifest, self.media_type).digest


def created_text(epoch: int | None, now: datetime | None = None) -> str:
    moment = datetime.fromtimestamp(epoch, UTC) if epoch is not None else (
        now or datetime.now(UTC))
    return format_created(moment)


def final_config(image: ImageConfig, *, created: str, labels: Mapping[str, str],
                 platform: Platform | None) -> ImageConfig:
    """The target stage's config as it is written: times filled in, labels, platform."""
    history = tuple(entry if entry.created is not None else replace(entry, created=created)
                    for entry in image.history)
    config = image.config
    if labels:
        config = config.with_labels(labels)
    result = replace(image, created=created, history=history, config=config,
                     extra=MappingProxyType({}))
    return result.with_platform(platform) if platform is not None else result


def layer_for_format(layer: Layer, image_format: ImageFormat) -> Layer:
    """The layer with the media type the manifest family needs (same bytes)."""
    media_type = layer.descriptor.media_type
    kind = mt.layer_compression(media_type)
    if image_format == "oci":
        wanted = mt.oci_equivalent(media_type)
    else:
        if kind == "zstd":
            raise UsageError(f"layer {layer.digest} is zstd-compressed: Docker schema 2 cannot "
                             "hold it; build with --image-format oci")
        wanted = mt.layer_media_type(oci=False, compression=kind)
        if media_type in mt.FOREIGN_LAYER_TYPES:
            wanted = mt.DOCKER_FOREIGN_LAYER
    return replace(layer, descriptor=replace(layer.descriptor, media_type=wanted))


def assemble(image: ImageConfig, layers: list[Layer], *, image_format: ImageFormat,
             ) -> AssembledImage:
    """Serialise `image` (already final) and build the manifest over `layers`."""
    if len(image.diff_ids) != len(layers):
        raise BuildError(f"internal error: {len(image.diff_ids)} diff_ids for "
                         f"{len(layers)} layers")
    typed = tuple(layer_for_format(layer, image_format) for layer in layers)
    media_type = mt.OCI_MANIFEST if image_format == "oci" else mt.DOCKER_MANIFEST
    config = image.to_json()
    config_descriptor = descriptor_for(config, mt.config_media_type(media_type))
    manifest = Manifest(media_type, config_descriptor,
                        tuple(layer.descriptor for layer in typed))
    return AssembledImage(config, config_descriptor, manifest.to_json(), media_type, typed)
