"""docker-archive tarballs we write, loaded by skopeo (containers/image, as podman uses)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ImageError
from core.image import mediatypes as mt
from core.image.config import parse_image_config
from core.image.manifest import descriptor_for
from core.image.reference import parse_reference
from core.layout.blobs import Blob
from core.layout.docker_archive import write_docker_archive
from tests.layout.conftest import FILES, TinyImage

SKOPEO = shutil.which("skopeo")
UMOCI = shutil.which("umoci")
needs_tools = pytest.mark.skipif(not (SKOPEO and UMOCI), reason="skopeo and umoci are required")
TAGS = (parse_reference("busybox"), parse_reference("localhost:5000/team/app:v1"),
        parse_reference("docker.io/me/app@sha256:" + "a" * 64))


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_archive_members(tmp_path: Path, docker_image: TinyImage) -> None:
    path = tmp_path / "image.tar"
    write_docker_archive(path, config=docker_image.config, layers=docker_image.blobs, tags=TAGS)
    with tarfile.open(path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        repositories = json.load(archive.extractfile("repositories"))  # type: ignore[arg-type]
        config_hex = descriptor_for(docker_image.config, mt.DOCKER_CONFIG).digest[7:]
        layer_hex = docker_image.layer.digest[7:]
        assert manifest == [{"Config": f"blobs/sha256/{config_hex}",
                             "RepoTags": ["busybox:latest", "localhost:5000/team/app:v1"],
                             "Layers": [f"blobs/sha256/{layer_hex}"]}]
        assert repositories == {"busybox": {"latest": layer_hex},
                                "localhost:5000/team/app": {"v1": layer_hex}}
        layer = archive.extractfile(f"blobs/sha256/{layer_hex}")
        assert layer is not None
        assert layer.read() == docker_image.layer_path.read_bytes()


@needs_tools
def test_skopeo_loads_our_archive(tmp_path: Path, docker_image: TinyImage) -> None:
    path = tmp_path / "image.tar"
    write_docker_archive(path, config=docker_image.config, layers=docker_image.blobs, tags=TAGS)
    assert SKOPEO and UMOCI
    inspected = run(SKOPEO, "--insecure-policy", "inspect", f"docker-archive:{path}")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Layers"] == [docker_image.diff_id]
    oci = tmp_path / "oci"
    copied = run(SKOPEO, "--insecure-policy", "copy", f"docker-archive:{path}", f"oci:{oci}:t")
    assert copied.returncode == 0, copied.stderr
    bundle = tmp_path / "bundle"
    unpacked = run(UMOCI, "unpack", "--rootless", "--image", f"{oci}:t", str(bundle))
    assert unpacked.returncode == 0, unpacked.stderr
    for name, data in FILES.items():
        assert (bundle / "rootfs" / name).read_bytes() == data


@needs_tools
def test_skopeo_checks_diff_ids(tmp_path: Path, docker_image: TinyImage) -> None:
    """A config whose diff_ids do not describe the layers is refused by the loader."""
    image = parse_image_config(docker_image.config)
    wrong = replace(image, diff_ids=("sha256:" + "0" * 64,)).to_json()
    path = tmp_path / "image.tar"
    write_docker_archive(path, config=wrong, layers=docker_image.blobs, tags=TAGS[:1])
    assert SKOPEO
    copied = run(SKOPEO, "--insecure-policy", "copy", f"docker-archive:{path}",
                 f"oci:{tmp_path / 'oci'}:t")
    assert copied.returncode != 0
    assert "Digest did not match" in copied.stderr


def test_layer_count_must_match_diff_ids(tmp_path: Path, docker_image: TinyImage) -> None:
    with pytest.raises(ImageError, match="1 diff_ids but 0 layers"):
        write_docker_archive(tmp_path / "x.tar", config=docker_image.config, layers=[])
    assert not (tmp_path / "x.tar").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"short", "shorter than the declared"),
    (None, "longer than the declared"),
    (b"", "content has digest"),
])
def test_layer_content_is_verified(tmp_path: Path, docker_image: TinyImage,
                                   content: bytes | None, message: str) -> None:
    real = docker_image.layer_path.read_bytes()
    if content is None:
        content = real + b"extra"
    elif not content:
        content = bytes(len(real))
    blob = Blob(docker_image.layer, io.BytesIO(content))
    path = tmp_path / "x.tar"
    with pytest.raises(ImageError, match=message):
        write_docker_archive(path, config=docker_image.config, layers=[blob])
    assert list(tmp_path.iterdir()) == [tmp_path / "source-docker"]


def test_repeated_layer_stored_once(tmp_path: Path, docker_image: TinyImage) -> None:
    image = parse_image_config(docker_image.config)
    doubled = replace(image, diff_ids=image.diff_ids * 2).to_json()
    path = tmp_path / "x.tar"
    write_docker_archive(path, config=doubled, layers=docker_image.blobs * 2)
    with tarfile.open(path) as archive:
        names = [m.name for m in archive.getmembers() if m.isfile()]
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert len(names) == len(set(names)) == 3
    assert len(manifest[0]["Layers"]) == 2
    assert manifest[0]["RepoTags"] == []
