"""Manifests, indexes and the descriptors that link them, parsed and written as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from core.errors import ImageError
from core.image import mediatypes as mt
from core.image.canonical import canonical_json, parse_json_object
from core.image.digest import parse_digest, sha256_digest

Annotations = Mapping[str, str]


@dataclass(frozen=True)
class Platform:
    """Where an image runs: `linux/arm64/v8`, `windows/amd64` with an OS version, ..."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            doc["variant"] = self.variant
        if self.os_version:
            doc["os.version"] = self.os_version
        if self.os_features:
            doc["os.features"] = list(self.os_features)
        return doc


@dataclass(frozen=True)
class Descriptor:
    """A typed, sized, digested pointer to content."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Annotations | None = None
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None

    def __post_init__(self) -> None:
        parse_digest(self.digest)
        if self.size < 0:
            raise ImageError(f"descriptor {self.digest} has a negative size")
        if self.annotations is not None and not isinstance(self.annotations, MappingProxyType):
            object.__setattr__(self, "annotations", MappingProxyType(dict(self.annotations)))

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.urls:
            doc["urls"] = list(self.urls)
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        if self.platform is not None:
            doc["platform"] = self.platform.to_dict()
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        return doc


@dataclass(frozen=True)
class Manifest:
    """A single-platform image: one config and its layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Annotations | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type,
                               "config": self.config.to_dict(),
                               "layers": [layer.to_dict() for layer in self.layers]}
        _add_common(doc, self.annotations, self.subject, self.artifact_type)
        return doc

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())


@dataclass(frozen=True)
class Index:
    """A list of manifests, usually one per platform (OCI index or Docker manifest list)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Annotations | None = None
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type,
                               "manifests": [m.to_dict() for m in self.manifests]}
        _add_common(doc, self.annotations, self.subject, self.artifact_type)
        return doc

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())


def descriptor_for(data: bytes, media_type: str, *, platform: Platform | None = None,
                   annotations: Annotations | None = None) -> Descriptor:
    """The descriptor of in-memory content (a manifest or config)."""
    return Descriptor(media_type, sha256_digest(data), len(data), platform=platform,
                      annotations=annotations)


def to_oci_manifest(manifest: Manifest) -> Manifest:
    """The same image with OCI media types (config and layer bytes are unchanged).

    Some readers only look at OCI-typed entries of an OCI layout (skopeo before 1.10 finds
    `oci:DIR:name` only for OCI manifests; umoci unpacks only OCI manifests).
    """
    return replace(
        manifest,
        media_type=mt.oci_equivalent(manifest.media_type),
        config=replace(manifest.config, media_type=mt.oci_equivalent(manifest.config.media_type)),
        layers=tuple(replace(layer, media_type=mt.oci_equivalent(layer.media_type))
                     for layer in manifest.layers),
    )


def parse_manifest_or_index(data: bytes, media_type_hint: str | None = None) -> Manifest | Index:
    """Parse manifest JSON. The document's `mediaType` wins over the hint (a Content-Type)."""
    doc = parse_json_object(data, "manifest")
    media_type = _media_type(doc, media_type_hint)
    if media_type in mt.SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise ImageError("Docker schema 1 manifests are not supported; "
                         "re-push the image with a current client")
    if doc.get("schemaVersion") != 2:
        raise ImageError(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    if media_type in mt.INDEX_TYPES:
        return _parse_index(doc, media_type)
    if media_type in mt.MANIFEST_TYPES:
        return _parse_manifest(doc, media_type)
    raise ImageError(f"unsupported manifest media type {media_type!r}")


def parse_manifest(data: bytes, media_type_hint: str | None = None) -> Manifest:
    """Parse JSON that must be a single-platform manifest."""
    parsed = parse_manifest_or_index(data, media_type_hint)
    if not isinstance(parsed, Manifest):
        raise ImageError(f"expected an image manifest, got an index ({parsed.media_type})")
    return parsed


def parse_index(data: bytes, media_type_hint: str | None = None) -> Index:
    """Parse JSON that must be an index or manifest list."""
    parsed = parse_manifest_or_index(data, media_type_hint)
    if not isinstance(parsed, Index):
        raise ImageError(f"expected an index, got a manifest ({parsed.media_type})")
    return parsed


def parse_descriptor(doc: object, where: str) -> Descriptor:
    """Validate one descriptor object found at `where` in a document."""
    if not isinstance(doc, dict):
        raise ImageError(f"{where}: descriptor must be an object")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{where}: size must be a non-negative integer, got {size!r}")
    digest = _string(doc, "digest", where)
    try:
        parse_digest(digest)
    except ImageError as err:
        raise ImageError(f"{where}: {err}") from None
    platform = doc.get("platform")
    return Descriptor(
        media_type=_string(doc, "mediaType", where),
        digest=digest,
        size=size,
        platform=None if platform is None else parse_platform_dict(platform, where),
        annotations=_annotations(doc, where),
        urls=_strings(doc, "urls", where),
        artifact_type=_optional_string(doc, "artifactType", where),
    )


def parse_platform_dict(doc: object, where: str) -> Platform:
    """Validate a descriptor's `platform` object."""
    if not isinstance(doc, dict):
        raise ImageError(f"{where}: platform must be an object")
    return Platform(
        os=_string(doc, "os", f"{where}.platform"),
        architecture=_string(doc, "architecture", f"{where}.platform"),
        variant=_optional_string(doc, "variant", f"{where}.platform") or None,
        os_version=_optional_string(doc, "os.version", f"{where}.platform") or None,
        os_features=_strings(doc, "os.features", f"{where}.platform"),
    )


def _media_type(doc: dict[str, Any], hint: str | None) -> str:
    declared = _optional_string(doc, "mediaType", "manifest")
    known = mt.MANIFEST_TYPES | mt.INDEX_TYPES
    if declared and hint in known and (declared in mt.INDEX_TYPES) != (hint in mt.INDEX_TYPES):
        raise ImageError(f"manifest says it is {declared} but was served as {hint}")
    if declared:
        return declared
    if hint in known | mt.SCHEMA1_TYPES:
        assert hint is not None
        return hint
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc or "layers" in doc:
        return mt.OCI_MANIFEST
    raise ImageError("cannot tell what kind of manifest this is (no mediaType, no config, "
                     "no manifests)")


def _parse_manifest(doc: dict[str, Any], media_type: str) -> Manifest:
    if "config" not in doc:
        raise ImageError("manifest has no config descriptor")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageError("manifest layers must be a list")
    return Manifest(
        media_type=media_type,
        config=parse_descriptor(doc["config"], "config"),
        layers=tuple(parse_descriptor(item, f"layers[{i}]") for i, item in enumerate(layers)),
        annotations=_annotations(doc, "manifest"),
        subject=_subject(doc),
        artifact_type=_optional_string(doc, "artifactType", "manifest"),
    )


def _parse_index(doc: dict[str, Any], media_type: str) -> Index:
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ImageError("index manifests must be a list")
    return Index(
        media_type=media_type,
        manifests=tuple(parse_descriptor(item, f"manifests[{i}]")
                        for i, item in enumerate(manifests)),
        annotations=_annotations(doc, "index"),
        subject=_subject(doc),
        artifact_type=_optional_string(doc, "artifactType", "index"),
    )


def _subject(doc: dict[str, Any]) -> Descriptor | None:
    subject = doc.get("subject")
    return None if subject is None else parse_descriptor(subject, "subject")


def _add_common(doc: dict[str, Any], annotations: Annotations | None,
                subject: Descriptor | None, artifact_type: str | None) -> None:
    if annotations:
        doc["annotations"] = dict(annotations)
    if subject is not None:
        doc["subject"] = subject.to_dict()
    if artifact_type:
        doc["artifactType"] = artifact_type


def _string(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ImageError(f"{where}: {key} must be a non-empty string, got {value!r}")
    return value


def _optional_string(doc: dict[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ImageError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _strings(doc: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _annotations(doc: dict[str, Any], where: str) -> Annotations | None:
    value = doc.get("annotations")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ImageError(f"{where}: annotations must map strings to strings")
    return MappingProxyType(dict(value))
