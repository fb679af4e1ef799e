"""A tiny but real image built in a temp dir: one gzip tar layer, a config and a manifest."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.image import mediatypes as mt
from core.image.config import ContainerConfig, History, ImageConfig
from core.image.manifest import Descriptor, Manifest, descriptor_for
from core.layout.blobs import Blob

FILES = {"hello.txt": b"hello from bucketbuild\n", "etc/motd": b"be nice\n"}


@dataclass(frozen=True)
class TinyImage:
    layer_path: Path
    layer: Descriptor
    diff_id: str
    config: bytes
    manifest: bytes

    @property
    def blobs(self) -> list[Blob]:
        return [Blob(self.layer, self.layer_path)]


def _layer_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        etc = tarfile.TarInfo("etc")
        etc.type, etc.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(etc)
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("greeting")
        link.type, link.linkname = tarfile.SYMTYPE, "hello.txt"
        archive.addfile(link)
    return buffer.getvalue()


def build_tiny_image(directory: Path, *, oci: bool) -> TinyImage:
    raw = _layer_tar()
    compressed = gzip.compress(raw, mtime=0)
    layer_path = directory / "layer.tar.gz"
    layer_path.write_bytes(compressed)
    layer_type = mt.layer_media_type(oci=oci, compression="gzip")
    layer = descriptor_for(compressed, layer_type)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    image = ImageConfig(
        architecture="amd64", os="linux", created="2024-01-02T03:04:05Z",
        config=ContainerConfig(cmd=("/bin/sh",)).with_default_path(),
    ).with_layer(diff_id, History(created="2024-01-02T03:04:05Z", created_by="COPY . /"))
    config = image.to_json()
    manifest_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST
    manifest = Manifest(manifest_type, descriptor_for(config, mt.config_media_type(manifest_type)),
                        (layer,))
    return TinyImage(layer_path, layer, diff_id, config, manifest.to_json())


@pytest.fixture
def oci_image(tmp_path: Path) -> TinyImage:
    source = tmp_path / "source-oci"
    source.mkdir()
    return build_tiny_image(source, oci=True)


@pytest.fixture
def docker_image(tmp_path: Path) -> TinyImage:
    source = tmp_path / "source-docker"
    source.mkdir()
    return build_tiny_image(source, oci=False)
