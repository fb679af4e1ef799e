"""Manifests and indexes: Docker and OCI examples, validation, canonical output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import ImageError
from core.image import mediatypes as mt
from core.image.manifest import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    descriptor_for,
    parse_index,
    parse_manifest,
    parse_manifest_or_index,
    to_oci_manifest,
)

C = "sha256:" + "c" * 64
L1 = "sha256:" + "1" * 64
L2 = "sha256:" + "2" * 64
M1 = "sha256:" + "a" * 64
M2 = "sha256:" + "b" * 64

DOCKER_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
               "size": 1469, "digest": C},
    "layers": [
        {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 772788, "digest": L1},
        {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "size": 1000, "digest": L2, "urls": ["https://example.invalid/layer"]},
    ],
}
OCI_MANIFEST = {
    "schemaVersion": 2,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 7, "digest": C},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 9,
                "digest": L1, "annotations": {"org.example": "yes"}}],
    "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
}
DOCKER_LIST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": M1, "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": M2, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
    ],
}
OCI_INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 100, "digest": M1,
         "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1",
                      "os.features": ["win32k"]}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 50, "digest": M2,
         "platform": {"architecture": "unknown", "os": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                         "vnd.docker.reference.digest": M1}},
    ],
}


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=3).encode()


def test_docker_manifest() -> None:
    manifest = parse_manifest_or_index(_bytes(DOCKER_MANIFEST), None)
    assert isinstance(manifest, Manifest)
    assert manifest.media_type == mt.DOCKER_MANIFEST
    assert manifest.config == Descriptor(mt.DOCKER_CONFIG, C, 1469)
    assert [layer.digest for layer in manifest.layers] == [L1, L2]
    assert manifest.layers[1].urls == ("https://example.invalid/layer",)
    assert json.loads(manifest.to_json()) == DOCKER_MANIFEST


def test_oci_manifest_without_media_type_uses_hint_or_shape() -> None:
    for hint in (mt.OCI_MANIFEST, None, "application/json"):
        manifest = parse_manifest(_bytes(OCI_MANIFEST), hint)
        assert manifest.media_type == mt.OCI_MANIFEST
        assert manifest.layers[0].annotations == {"org.example": "yes"}
        assert manifest.annotations == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    assert json.loads(manifest.to_json()) == {**OCI_MANIFEST, "mediaType": mt.OCI_MANIFEST}


def test_docker_manifest_list() -> None:
    index = parse_index(_bytes(DOCKER_LIST), mt.DOCKER_MANIFEST_LIST)
    assert index.media_type == mt.DOCKER_MANIFEST_LIST
    assert [d.platform for d in index.manifests] == [
        Platform("linux", "amd64"), Platform("linux", "arm", "v7")]
    assert json.loads(index.to_json()) == DOCKER_LIST


def test_oci_index() -> None:
    index = parse_manifest_or_index(_bytes(OCI_INDEX), mt.OCI_INDEX)
    assert isinstance(index, Index)
    windows = index.manifests[0].platform
    assert windows == Platform("windows", "amd64", None, "10.0.17763.1", ("win32k",))
    assert str(windows) == "windows/amd64"
    assert json.loads(index.to_json()) == OCI_INDEX


def test_to_json_is_canonical() -> None:
    manifest = parse_manifest(_bytes(DOCKER_MANIFEST))
    again = parse_manifest(json.dumps(dict(reversed(DOCKER_MANIFEST.items()))).encode())
    assert manifest.to_json() == again.to_json()
    assert b" " not in manifest.to_json()
    assert parse_manifest(manifest.to_json()) == manifest


def test_to_oci_manifest() -> None:
    converted = to_oci_manifest(parse_manifest(_bytes(DOCKER_MANIFEST)))
    assert converted.media_type == mt.OCI_MANIFEST
    assert converted.config == Descriptor(mt.OCI_CONFIG, C, 1469)
    assert [layer.media_type for layer in converted.layers] == [
        mt.OCI_LAYER_GZIP, mt.OCI_NONDISTRIBUTABLE_LAYER_GZIP]
    assert converted.layers[1].urls == ("https://example.invalid/layer",)


def test_descriptor_for() -> None:
    descriptor = descriptor_for(b"{}", mt.OCI_CONFIG)
    assert descriptor.size == 2
    assert descriptor.digest == (
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")


def _broken(base: dict[str, Any], path: tuple[Any, ...], value: Any) -> bytes:
    doc = json.loads(json.dumps(base))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("data", "hint", "message"), [
    (b"not json", None, "manifest is not valid JSON"),
    (b"[1, 2]", None, "must be a JSON object"),
    (b"{}", None, "cannot tell what kind of manifest"),
    (b'{"schemaVersion": 1, "fsLayers": []}', mt.DOCKER_SCHEMA1_SIGNED,
     "schema 1 manifests are not supported"),
    (_broken(DOCKER_MANIFEST, ("schemaVersion",), 3), None, "unsupported manifest schemaVersion"),
    (_broken(DOCKER_MANIFEST, ("mediaType",), "text/plain"), None,
     "unsupported manifest media type 'text/plain'"),
    (_broken(DOCKER_MANIFEST, ("config",), KeyError), None, "manifest has no config"),
    (_broken(DOCKER_MANIFEST, ("layers",), {}), None, "layers must be a list"),
    (_broken(DOCKER_MANIFEST, ("layers", 0, "size"), -1), None,
     r"layers\[0\]: size must be a non-negative integer"),
    (_broken(DOCKER_MANIFEST, ("layers", 1, "size"), "12"), None,
     r"layers\[1\]: size must be a non-negative integer"),
    (_broken(DOCKER_MANIFEST, ("layers", 0, "size"), True), None, "size must be"),
    (_broken(DOCKER_MANIFEST, ("config", "digest"), "sha256:zz"), None, "config: invalid digest"),
    (_broken(DOCKER_MANIFEST, ("config", "mediaType"), ""), None,
     "config: mediaType must be a non-empty string"),
    (_broken(DOCKER_MANIFEST, ("layers", 0, "urls"), "x"), None, "urls must be a list"),
    (_broken(DOCKER_MANIFEST, ("layers", 0, "annotations"), {"a": 1}), None,
     "annotations must map strings to strings"),
    (_broken(DOCKER_LIST, ("manifests",), None), None, "index manifests must be a list"),
    (_broken(DOCKER_LIST, ("manifests", 0, "platform"), "linux"), None,
     "platform must be an object"),
    (_broken(DOCKER_LIST, ("manifests", 0, "platform", "os"), None), None,
     r"manifests\[0\].platform: os must be a non-empty string"),
    (_bytes(DOCKER_LIST), mt.OCI_MANIFEST, "manifest says it is .* but was served as"),
])
def test_invalid(data: bytes, hint: str | None, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_manifest_or_index(data, hint)


def test_kind_checks() -> None:
    with pytest.raises(ImageError, match="expected an image manifest, got an index"):
        parse_manifest(_bytes(DOCKER_LIST))
    with pytest.raises(ImageError, match="expected an index, got a manifest"):
        parse_index(_bytes(DOCKER_MANIFEST))


def test_descriptor_checks_itself() -> None:
    with pytest.raises(ImageError, match="negative size"):
        Descriptor(mt.OCI_LAYER, L1, -1)
    with pytest.raises(ImageError, match="invalid digest"):
        Descriptor(mt.OCI_LAYER, "sha256:1", 1)
    mutable = {"a": "b"}
    descriptor = Descriptor(mt.OCI_LAYER, L1, 1, annotations=mutable)
    mutable["a"] = "changed"
    assert descriptor.annotations == {"a": "b"}
