"""OCI layouts we write, checked with skopeo and umoci; and read back by our reader."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ImageError
from core.image import mediatypes as mt
from core.image.manifest import Index, Platform, descriptor_for, parse_manifest, to_oci_manifest
from core.layout.blobs import Blob
from core.layout.oci import REF_NAME, OciLayout, read_oci_image, write_oci_image
from tests.layout.conftest import FILES, TinyImage, build_tiny_image

SKOPEO = shutil.which("skopeo")
UMOCI = shutil.which("umoci")
needs_tools = pytest.mark.skipif(not (SKOPEO and UMOCI), reason="skopeo and umoci are required")


def skopeo(*args: str) -> str:
    assert SKOPEO
    done = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_layout_structure(tmp_path: Path, oci_image: TinyImage) -> None:
    root = tmp_path / "layout"
    descriptor = write_oci_image(root, manifest=oci_image.manifest, config=oci_image.config,
                                 layers=oci_image.blobs, ref_name="v1")
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["manifests"] == [{
        "mediaType": mt.OCI_MANIFEST, "digest": descriptor.digest, "size": descriptor.size,
        "annotations": {REF_NAME: "v1"}}]
    blobs = sorted(p.name for p in (root / "blobs" / "sha256").iterdir())
    assert len(blobs) == 3
    assert descriptor.digest.removeprefix("sha256:") in blobs


@needs_tools
def test_skopeo_reads_and_copies_our_layout(tmp_path: Path, oci_image: TinyImage) -> None:
    root = tmp_path / "layout"
    write_oci_image(root, manifest=oci_image.manifest, config=oci_image.config,
                    layers=oci_image.blobs, ref_name="latest")
    assert skopeo("inspect", "--raw", f"oci:{root}:latest").encode() == oci_image.manifest
    config = json.loads(skopeo("inspect", "--config", "--raw", f"oci:{root}:latest"))
    assert config["rootfs"]["diff_ids"] == [oci_image.diff_id]
    other = tmp_path / "other"
    skopeo("copy", f"oci:{root}:latest", f"oci:{other}:copied")
    assert read_oci_image(other, ref_name="copied").config.diff_ids == (oci_image.diff_id,)


@needs_tools
def test_umoci_unpacks_our_layout(tmp_path: Path, oci_image: TinyImage) -> None:
    root = tmp_path / "layout"
    write_oci_image(root, manifest=oci_image.manifest, config=oci_image.config,
                    layers=oci_image.blobs, ref_name="latest")
    bundle = tmp_path / "bundle"
    assert UMOCI
    done = subprocess.run([UMOCI, "unpack", "--rootless", "--image", f"{root}:latest",
                           str(bundle)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    rootfs = bundle / "rootfs"
    for name, data in FILES.items():
        assert (rootfs / name).read_bytes() == data
    assert (rootfs / "greeting").readlink() == Path("hello.txt")
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["args"] == ["/bin/sh"]


@needs_tools
def test_docker_manifest_converted_for_skopeo(tmp_path: Path, docker_image: TinyImage) -> None:
    """skopeo 1.9 resolves `oci:DIR:name` only to OCI-typed entries: convert first."""
    converted = to_oci_manifest(parse_manifest(docker_image.manifest))
    root = tmp_path / "layout"
    write_oci_image(root, manifest=converted.to_json(), config=docker_image.config,
                    layers=[Blob(converted.layers[0], docker_image.layer_path)],
                    ref_name="converted")
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{root}:converted"))
    assert raw["mediaType"] == mt.OCI_MANIFEST
    assert raw["config"]["mediaType"] == mt.OCI_CONFIG
    assert [layer["mediaType"] for layer in raw["layers"]] == [mt.OCI_LAYER_GZIP]
    assert raw["layers"][0]["digest"] == docker_image.layer.digest


def test_docker_manifest_kept_as_given(tmp_path: Path, docker_image: TinyImage) -> None:
    root = tmp_path / "layout"
    write_oci_image(root, manifest=docker_image.manifest, config=docker_image.config,
                    layers=docker_image.blobs, ref_name="docker")
    image = read_oci_image(root, ref_name="docker")
    assert image.manifest.media_type == mt.DOCKER_MANIFEST
    assert image.manifest_bytes == docker_image.manifest


def test_adding_an_image_keeps_the_others(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    first = build_tiny_image(_dir(tmp_path / "a"), oci=True)
    second = build_tiny_image(_dir(tmp_path / "b"), oci=False)
    d1 = write_oci_image(root, manifest=first.manifest, config=first.config,
                         layers=first.blobs, ref_name="one")
    d2 = write_oci_image(root, manifest=second.manifest, config=second.config,
                         layers=second.blobs, ref_name="two")
    names = {d.annotations[REF_NAME]: d.digest
             for d in OciLayout(root).read_index().manifests if d.annotations}
    assert names == {"one": d1.digest, "two": d2.digest}
    # re-pointing a name replaces only that entry
    write_oci_image(root, manifest=first.manifest, config=first.config, layers=first.blobs,
                    ref_name="two")
    names = {d.annotations[REF_NAME]: d.digest
             for d in OciLayout(root).read_index().manifests if d.annotations}
    assert names == {"one": d1.digest, "two": d1.digest}


def test_read_back(tmp_path: Path, oci_image: TinyImage) -> None:
    root = tmp_path / "layout"
    descriptor = write_oci_image(root, manifest=oci_image.manifest, config=oci_image.config,
                                 layers=oci_image.blobs, ref_name="latest",
                                 platform=Platform("linux", "amd64"))
    image = read_oci_image(root, ref_name="latest")
    assert image.descriptor.digest == descriptor.digest
    assert image.manifest_bytes == oci_image.manifest
    assert image.config_bytes == oci_image.config
    assert image.config.config.cmd == ("/bin/sh",)
    assert [p.read_bytes() for p in image.layer_paths] == [oci_image.layer_path.read_bytes()]
    assert read_oci_image(root).descriptor.digest == descriptor.digest


def test_read_unknown_name_lists_names(tmp_path: Path, oci_image: TinyImage) -> None:
    root = tmp_path / "layout"
    write_oci_image(root, manifest=oci_image.manifest, config=oci_image.config,
                    layers=oci_image.blobs, ref_name="latest")
    with pytest.raises(ImageError, match="no image named 'nope'; names: latest"):
        read_oci_image(root, ref_name="nope")


def test_stream_sources_are_verified(tmp_path: Path, oci_image: TinyImage) -> None:
    data = oci_image.layer_path.read_bytes()
    layout = OciLayout(tmp_path / "layout")
    path = layout.write_blob(Blob(oci_image.layer, io.BytesIO(data)))
    assert path.read_bytes() == data
    wrong = descriptor_for(b"other content", mt.OCI_LAYER_GZIP)
    with pytest.raises(ImageError, match="size differs"):
        layout.write_blob(Blob(wrong, io.BytesIO(data)))
    same_size = descriptor_for(b"x" * len(data), mt.OCI_LAYER_GZIP)
    with pytest.raises(ImageError, match="content has digest"):
        layout.write_blob(Blob(same_size, io.BytesIO(data)))
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_mismatched_config_or_layers_rejected(tmp_path: Path, oci_image: TinyImage) -> None:
    with pytest.raises(ImageError, match="config bytes do not match"):
        write_oci_image(tmp_path / "l", manifest=oci_image.manifest, config=b"{}",
                        layers=oci_image.blobs)
    with pytest.raises(ImageError, match="do not match the manifest"):
        write_oci_image(tmp_path / "l", manifest=oci_image.manifest, config=oci_image.config,
                        layers=[])


@pytest.mark.parametrize("name", ["", "a b", "-x", "a//b", "tag:"])
def test_bad_ref_names(tmp_path: Path, oci_image: TinyImage, name: str) -> None:
    with pytest.raises(ImageError, match="invalid OCI layout ref name"):
        write_oci_image(tmp_path / "l", manifest=oci_image.manifest, config=oci_image.config,
                        layers=oci_image.blobs, ref_name=name)
    assert not (tmp_path / "l").exists()


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def test_read_picks_platform_from_an_index(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    amd = build_tiny_image(_dir(tmp_path / "amd"), oci=True)
    arm = build_tiny_image(_dir(tmp_path / "arm"), oci=True)
    d_amd = write_oci_image(root, manifest=amd.manifest, config=amd.config, layers=amd.blobs,
                            platform=Platform("linux", "amd64"))
    arm_config = arm.config.replace(b'"amd64"', b'"arm64"')
    arm_manifest = parse_manifest(arm.manifest)
    arm_manifest = replace(arm_manifest, config=descriptor_for(arm_config, mt.OCI_CONFIG))
    d_arm = write_oci_image(root, manifest=arm_manifest.to_json(), config=arm_config,
                            layers=arm.blobs, platform=Platform("linux", "arm64", "v8"))
    index = Index(mt.OCI_INDEX, (d_amd, d_arm))
    layout = OciLayout(root)
    index_descriptor = descriptor_for(index.to_json(), mt.OCI_INDEX)
    layout.write_blob(Blob(index_descriptor, index.to_json()))
    layout.add_to_index(index_descriptor, "multi")
    chosen = read_oci_image(root, ref_name="multi", platform=Platform("linux", "arm64"))
    assert chosen.descriptor.digest == d_arm.digest
    assert chosen.config.architecture == "arm64"
    with pytest.raises(ImageError, match="is an index; name a platform"):
        read_oci_image(root, ref_name="multi")
    with pytest.raises(ImageError, match="holds 3 images; name one"):
        read_oci_image(root)


def test_read_detects_damaged_blobs(tmp_path: Path, oci_image: TinyImage) -> None:
    root = tmp_path / "layout"
    write_oci_image(root, manifest=oci_image.manifest, config=oci_image.config,
                    layers=oci_image.blobs, ref_name="x")
    layout = OciLayout(root)
    image = read_oci_image(root, ref_name="x")
    layout.blob_path(image.manifest.config.digest).write_bytes(b"{}")
    with pytest.raises(ImageError, match="does not match its digest"):
        read_oci_image(root, ref_name="x")
    image.layer_paths[0].unlink()
    # a missing layer is not reported as present
    assert not layout.has_blob(image.manifest.layers[0])
    with pytest.raises(ImageError, match="not an OCI image layout"):
        read_oci_image(tmp_path / "nowhere")


def test_concurrent_writers_keep_every_name(tmp_path: Path, oci_image: TinyImage) -> None:
    root = tmp_path / "layout"

    def add(number: int) -> None:
        write_oci_image(root, manifest=oci_image.manifest, config=oci_image.config,
                        layers=oci_image.blobs, ref_name=f"n{number}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add, range(16)))
    names = {(d.annotations or {}).get(REF_NAME) for d in OciLayout(root).read_index().manifests}
    assert names == {f"n{i}" for i in range(16)}
