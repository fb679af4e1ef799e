"""Media types of manifests, indexes, configs and layers (Docker schema 2 and OCI)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from core.errors import ImageError

Compression = Literal["gzip", "zstd", "none"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_UNCOMPRESSED = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDISTRIBUTABLE_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_NONDISTRIBUTABLE_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED})
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})

_LAYER_COMPRESSION: MappingProxyType[str, Compression] = MappingProxyType({
    DOCKER_LAYER: "gzip",
    DOCKER_LAYER_UNCOMPRESSED: "none",
    DOCKER_FOREIGN_LAYER: "gzip",
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_NONDISTRIBUTABLE_LAYER: "none",
    OCI_NONDISTRIBUTABLE_LAYER_GZIP: "gzip",
    OCI_NONDISTRIBUTABLE_LAYER_ZSTD: "zstd",
})
LAYER_TYPES = frozenset(_LAYER_COMPRESSION)
#: layers a registry may refuse to store; they are fetched from their `urls` instead
FOREIGN_LAYER_TYPES = frozenset({
    DOCKER_FOREIGN_LAYER,
    OCI_NONDISTRIBUTABLE_LAYER,
    OCI_NONDISTRIBUTABLE_LAYER_GZIP,
    OCI_NONDISTRIBUTABLE_LAYER_ZSTD,
})

#: the OCI media type for each Docker one
_OCI_EQUIVALENT = MappingProxyType({
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER: OCI_LAYER_GZIP,
    DOCKER_LAYER_UNCOMPRESSED: OCI_LAYER,
    DOCKER_FOREIGN_LAYER: OCI_NONDISTRIBUTABLE_LAYER_GZIP,
})

#: `Accept` for manifest GETs and HEADs: indexes first, then single-platform manifests
ACCEPT_HEADER = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


def layer_compression(media_type: str) -> Compression:
    """How a layer of `media_type` is compressed. Unknown layer types are an error."""
    try:
        return _LAYER_COMPRESSION[media_type]
    except KeyError:
        raise ImageError(f"unsupported layer media type {media_type!r}") from None


def layer_media_type(*, oci: bool, compression: Compression) -> str:
    """The media type for a new layer in a Docker (`oci=False`) or OCI manifest."""
    if oci:
        return {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}[compression]
    if compression == "zstd":
        raise ImageError("zstd layers need an OCI manifest (Docker schema 2 has no zstd type)")
    return DOCKER_LAYER if compression == "gzip" else DOCKER_LAYER_UNCOMPRESSED


def config_media_type(manifest_media_type: str) -> str:
    """The config media type that goes with a manifest media type."""
    if manifest_media_type == DOCKER_MANIFEST:
        return DOCKER_CONFIG
    if manifest_media_type == OCI_MANIFEST:
        return OCI_CONFIG
    raise ImageError(f"not an image manifest media type: {manifest_media_type!r}")


def is_oci(media_type: str) -> bool:
    """True for the OCI family of media types."""
    return media_type.startswith("application/vnd.oci.")


def oci_equivalent(media_type: str) -> str:
    """The OCI media type for a Docker one; OCI and unknown types are returned unchanged."""
    return _OCI_EQUIVALENT.get(media_type, media_type)
