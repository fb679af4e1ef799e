"""Where cached layers live: a registry repository, or an OCI image layout (`oci:DIR`).

Each cached layer is a tiny image, as kaniko stores them: a manifest with that one layer and a
config whose label `io.bucketbuild.cache.key` carries the key and whose history holds the
step's `created_by`; it is tagged (or, in a layout, ref-named) with the key's hex digits. A
lookup reads the manifest and the config (two small requests), checks that the key matches
and that the layer blob is still there (a HEAD request, or the file in the layout), and treats
an entry older than the TTL (the config's `created`) as a miss. Failures to read are misses:
the cache never fails a build.

Several builds (threads or processes) may share one store: a registry tag written twice holds
either writer's entry, both valid; a layout's index.json is rewritten under a lock on the
layout directory (`OciLayout.add_to_index`), and blobs are written to a temporary name and
renamed, so readers see whole files only.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from core.errors import BuildError, RegistryError
from core.image import mediatypes as mt
from core.image.config import (
    ContainerConfig,
    History,
    ImageConfig,
    format_created,
    parse_image_config,
)
from core.image.manifest import Descriptor, Manifest, Platform, descriptor_for, parse_manifest
from core.image.reference import Reference, Repository
from core.registry import BlobSource, RegistryClient
from core.registry.connection import pull_scope
from core.registry.push import push_blob

log = logging.getLogger(__name__)

KEY_LABEL = "io.bucketbuild.cache.key"
_MAX_CONFIG = 1 << 20


@dataclass(frozen=True)
class CacheEntry:
    """A cached layer found for a key."""

    descriptor: Descriptor
    diff_id: str
    created_by: str
    created: datetime
    path: Path | None = None  # the blob on disk (OCI layout stores)


@dataclass(frozen=True)
class CacheImage:
    """The tiny image that stores one cached layer."""

    config: bytes
    manifest: bytes
    media_type: str

    @property
    def config_descriptor(self) -> Descriptor:
        return parse_manifest(self.manifest, self.media_type).config


def cache_image(key: str, layer: Descriptor, diff_id: str, *, created_by: str,
                platform: Platform, now: datetime, oci: bool) -> CacheImage:
    """The image that stores `layer` under `key` (OCI or Docker media types)."""
    created = format_created(now)
    config = ImageConfig(architecture=platform.architecture, os=platform.os,
                         variant=platform.variant, created=created,
                         config=ContainerConfig(labels={KEY_LABEL: key}), diff_ids=(diff_id,),
                         history=(History(created=created, created_by=created_by,
                                          comment="bucketbuild layer cache"),))
    media_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
    config_bytes = config.to_json()
    layer_type = mt.oci_equivalent(layer.media_type) if oci else layer.media_type
    manifest = Manifest(media_type, descriptor_for(config_bytes, mt.config_media_type(media_type)),
                        (Descriptor(layer_type, layer.digest, layer.size),))
    return CacheImage(config_bytes, manifest.to_json(), media_type)


def read_entry(key: str, manifest: Manifest, config_bytes: bytes, *, ttl: float,
               now: datetime) -> CacheEntry | None:
    """The entry a cache image holds, or None when it is not for `key` or has expired."""
    config = parse_image_config(config_bytes)
    if config.config.labels.get(KEY_LABEL) != key or len(manifest.layers) != 1 or \
            len(config.diff_ids) != 1 or not config.created:
        log.warning("cache entry %s is not one of ours; ignored", key[:12])
        return None
    created = datetime.fromisoformat(config.created.replace("Z", "+00:00"))
    if (now - created).total_seconds() > ttl:
        log.info("cache entry %s expired (created %s)", key[:12], config.created)
        return None
    history = config.history[-1].created_by if config.history else ""
    return CacheEntry(manifest.layers[0], config.diff_ids[0], history, created)


class CacheStore(Protocol):
    """A place for cached layers (see the module notes)."""

    def lookup(self, key: str, *, ttl: float) -> CacheEntry | None: ...
    def save(self, key: str, image: CacheImage, layer: Path | None) -> None: ...
    def describe(self) -> str: ...


class RegistryCacheStore:
    """Cached layers as images in a registry repository (`REPO:KEYHEX`). The layer blob must
    already be in the repository when `save` is called (the build places it there)."""

    def __init__(self, client: RegistryClient, repository: Repository) -> None:
        self.client = client
        self.repository = repository

    def describe(self) -> str:
        return str(self.repository)

    def lookup(self, key: str, *, ttl: float) -> CacheEntry | None:
        ref = Reference(self.repository.registry, self.repository.repository, key, None)
        try:
            served = self.client.fetch_manifest(ref)
            manifest = parse_manifest(served.data, served.media_type)
            if manifest.config.size > _MAX_CONFIG:
                return None
            sink = io.BytesIO()
            self.client.fetch_blob(self.repository, manifest.config.digest, sink,
                                   size=manifest.config.size)
        except RegistryError as error:
            if error.status != 404:
                log.warning("cache lookup in %s failed: %s", self.repository, error)
            return None
        except BuildError as error:
            log.warning("cache entry %s in %s is unreadable: %s", key[:12], self.repository,
                        error)
            return None
        entry = read_entry(key, manifest, sink.getvalue(), ttl=ttl, now=datetime.now(UTC))
        if entry is None or not self._has_layer(key, entry.descriptor.digest):
            return None
        return entry

    def _has_layer(self, key: str, digest: str) -> bool:
        """Whether the entry's layer blob is still in the repository (it may have been
        deleted or collected while the tag stayed); asks only for pull access."""
        repository = self.repository.repository
        try:
            response = self.client.connection(self.repository.registry).request(
                "HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository,
                scopes=pull_scope(repository), action=f"check blob {digest}", ok=(200, 404))
        except BuildError as error:
            log.warning("cache entry %s in %s: cannot check its layer: %s", key[:12],
                        self.repository, error)
            return False
        response.close()
        if response.status_code == 404:
            log.warning("cache entry %s in %s names layer %s, which is gone; rebuilding",
                        key[:12], self.repository, digest)
        return response.status_code == 200

    def save(self, key: str, image: CacheImage, layer: Path | None) -> None:
        conn = self.client.connection(self.repository.registry)
        push_blob(conn, self.repository.repository, BlobSource.from_bytes(image.config),
                  options=self.client.upload_options)
        ref = Reference(self.repository.registry, self.repository.repository, key, None)
        self.client.push_manifest(ref, image.manifest, image.media_type)


class OciCacheStore:
    """Cached layers in an OCI image layout, ref-named by key."""

    def __init__(self, root: Path) -> None:
        from core.layout.oci import OciLayout  # only an `oci:` cache needs the layout code

        self.layout = OciLayout(root)

    def describe(self) -> str:
        return f"oci:{self.layout.root}"

    def lookup(self, key: str, *, ttl: float) -> CacheEntry | None:
        from core.layout.oci import REF_NAME

        try:
            descriptor = next((d for d in self.layout.read_index().manifests
                               if (d.annotations or {}).get(REF_NAME) == key), None)
            if descriptor is None:
                return None
            manifest = parse_manifest(self.layout.read_blob(descriptor), descriptor.media_type)
            entry = read_entry(key, manifest, self.layout.read_blob(manifest.config), ttl=ttl,
                               now=datetime.now(UTC))
        except (BuildError, OSError, ValueError) as error:
            log.warning("cache entry %s in %s is unreadable: %s", key[:12], self.describe(),
                        error)
            return None
        if entry is None:
            return None
        if not self.layout.has_blob(entry.descriptor):
            log.warning("cache entry %s in %s names layer %s, which is gone; rebuilding",
                        key[:12], self.describe(), entry.descriptor.digest)
            return None
        return CacheEntry(entry.descriptor, entry.diff_id, entry.created_by, entry.created,
                          path=self.layout.blob_path(entry.descriptor.digest))

    def save(self, key: str, image: CacheImage, layer: Path | None) -> None:
        if layer is None:
            raise BuildError("an OCI layout cache needs the layer on disk")
        from core.layout.blobs import Blob
        from core.layout.oci import write_oci_image

        manifest = parse_manifest(image.manifest, image.media_type)
        write_oci_image(self.layout.root, manifest=image.manifest, config=image.config,
                        layers=[Blob(manifest.layers[0], layer)], ref_name=key)
