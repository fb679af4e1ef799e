"""Crafting hostile base images: an OCI manifest and config around raw layer blobs, pushed
with our own client, so the registry holds exactly the bytes an attacker would push."""

from __future__ import annotations

import gzip
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import zstandard

from core.image.config import ContainerConfig, History, ImageConfig
from core.image.digest import sha256_digest
from core.image.manifest import Descriptor, Manifest, Platform
from core.image.mediatypes import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)
from core.image.reference import Reference, parse_reference
from core.registry import BlobSource, RegistryClient
from core.rootfs.compression import Compression, detect
from tests.fixtures.registry import RegistryServer, make_client
from tests.security import tarbytes as tb
from tests.security.corpus import CASES, as_layer_blob, lower_layer
from tests.security.guard import Sentinel

PLATFORM = Platform("linux", "amd64")
_MEDIA_TYPES = {Compression.GZIP: OCI_LAYER_GZIP, Compression.ZSTD: OCI_LAYER_ZSTD}


@dataclass(frozen=True)
class CraftedImage:
    manifest: bytes
    blobs: tuple[bytes, ...]  # config first, then the layers


def diff_id(blob: bytes) -> str:
    """The layer's uncompressed digest when it can be computed cheaply, else the blob's own
    (a hostile layer's diff_id is whatever its author wrote)."""
    kind = detect(blob[:512])
    try:
        if kind is Compression.GZIP and len(blob) < (1 << 20):
            return sha256_digest(gzip.decompress(blob))
        if kind is Compression.ZSTD and len(blob) < (1 << 20):
            return sha256_digest(zstandard.ZstdDecompressor().decompressobj().decompress(blob))
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        pass
    return sha256_digest(blob)


def craft_image(layers: list[bytes]) -> CraftedImage:
    """An OCI image around raw layer blobs, media types from their magic bytes."""
    config = ImageConfig(
        architecture="amd64", os="linux",
        config=ContainerConfig(env=("PATH=/bin",), cmd=("/bin/sh",)),
        diff_ids=tuple(diff_id(layer) for layer in layers),
        history=tuple(History(created_by="hostile corpus") for _ in layers))
    config_bytes = config.to_json()
    descriptors = tuple(
        Descriptor(_MEDIA_TYPES.get(detect(layer[:512]), OCI_LAYER), sha256_digest(layer),
                   len(layer)) for layer in layers)
    manifest = Manifest(OCI_MANIFEST, Descriptor(OCI_CONFIG, sha256_digest(config_bytes),
                                                 len(config_bytes)), descriptors)
    return CraftedImage(manifest.to_json(), (config_bytes, *layers))


def push(client: RegistryClient, ref: Reference, image: CraftedImage) -> str:
    return client.push_image([ref], blobs=[BlobSource.from_bytes(b) for b in image.blobs],
                             manifest=image.manifest, media_type=OCI_MANIFEST)


def case_names() -> list[str]:
    """The cases pushed as images (the slow ones are left out)."""
    return sorted(name for name, case in CASES.items() if not case.slow)


def push_corpus(registry: RegistryServer, sentinel: Sentinel) -> dict[str, Reference]:
    """Every corpus case as `hostile/<case>:v1`: the lower layer, then the hostile one."""
    lower = tb.gzipped(lower_layer(sentinel), level=1)
    refs = {name: parse_reference(f"{registry.host}/hostile/{name}:v1")
            for name in case_names()}

    def push_one(name: str) -> None:
        image = craft_image([lower, as_layer_blob(CASES[name], sentinel)])
        assert push(client, refs[name], image) == sha256_digest(image.manifest)

    with make_client(registry.host) as client, ThreadPoolExecutor(8) as pool:
        list(pool.map(push_one, refs))
    return refs
