"""Media types: layer compression, choices for new layers, Accept header, OCI equivalents."""

from __future__ import annotations

import pytest

from core.errors import ImageError
from core.image import mediatypes as mt


@pytest.mark.parametrize(("media_type", "compression"), [
    ("application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"),
    ("application/vnd.docker.image.rootfs.diff.tar", "none"),
    ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"),
    ("application/vnd.oci.image.layer.v1.tar", "none"),
    ("application/vnd.oci.image.layer.v1.tar+gzip", "gzip"),
    ("application/vnd.oci.image.layer.v1.tar+zstd", "zstd"),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar", "none"),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"),
])
def test_layer_compression(media_type: str, compression: str) -> None:
    assert mt.layer_compression(media_type) == compression
    assert media_type in mt.LAYER_TYPES


@pytest.mark.parametrize("media_type", [
    mt.DOCKER_CONFIG, mt.OCI_MANIFEST, "application/octet-stream", "",
])
def test_unknown_layer_type(media_type: str) -> None:
    with pytest.raises(ImageError, match="unsupported layer media type"):
        mt.layer_compression(media_type)


@pytest.mark.parametrize(("oci", "compression", "media_type"), [
    (False, "gzip", mt.DOCKER_LAYER),
    (False, "none", mt.DOCKER_LAYER_UNCOMPRESSED),
    (True, "gzip", mt.OCI_LAYER_GZIP),
    (True, "zstd", mt.OCI_LAYER_ZSTD),
    (True, "none", mt.OCI_LAYER),
])
def test_layer_media_type(oci: bool, compression: mt.Compression, media_type: str) -> None:
    assert mt.layer_media_type(oci=oci, compression=compression) == media_type


def test_zstd_needs_oci() -> None:
    with pytest.raises(ImageError, match="zstd layers need an OCI manifest"):
        mt.layer_media_type(oci=False, compression="zstd")


def test_config_media_type() -> None:
    assert mt.config_media_type(mt.DOCKER_MANIFEST) == mt.DOCKER_CONFIG
    assert mt.config_media_type(mt.OCI_MANIFEST) == mt.OCI_CONFIG
    with pytest.raises(ImageError, match="not an image manifest"):
        mt.config_media_type(mt.OCI_INDEX)


def test_families() -> None:
    expected = {
        "MANIFEST_TYPES": {"application/vnd.docker.distribution.manifest.v2+json",
                           "application/vnd.oci.image.manifest.v1+json"},
        "INDEX_TYPES": {"application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.oci.image.index.v1+json"},
        "CONFIG_TYPES": {"application/vnd.docker.container.image.v1+json",
                         "application/vnd.oci.image.config.v1+json"},
    }
    for name, types in expected.items():
        assert getattr(mt, name) == types
    assert mt.FOREIGN_LAYER_TYPES <= mt.LAYER_TYPES
    assert mt.is_oci(mt.OCI_LAYER_ZSTD) and not mt.is_oci(mt.DOCKER_LAYER)


def test_accept_header_lists_every_manifest_type() -> None:
    accepted = [part.strip() for part in mt.ACCEPT_HEADER.split(",")]
    assert set(accepted) == mt.MANIFEST_TYPES | mt.INDEX_TYPES
    assert len(accepted) == 4


@pytest.mark.parametrize(("docker", "oci"), [
    (mt.DOCKER_MANIFEST, mt.OCI_MANIFEST),
    (mt.DOCKER_MANIFEST_LIST, mt.OCI_INDEX),
    (mt.DOCKER_CONFIG, mt.OCI_CONFIG),
    (mt.DOCKER_LAYER, mt.OCI_LAYER_GZIP),
    (mt.DOCKER_LAYER_UNCOMPRESSED, mt.OCI_LAYER),
    (mt.DOCKER_FOREIGN_LAYER, mt.OCI_NONDISTRIBUTABLE_LAYER_GZIP),
    (mt.OCI_LAYER_ZSTD, mt.OCI_LAYER_ZSTD),
])
def test_oci_equivalent(docker: str, oci: str) -> None:
    assert mt.oci_equivalent(docker) == oci
