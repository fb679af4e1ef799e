"""Image formats and outputs: OCI + zstd, reproducible digests, archives, layouts, files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from core.build.options import OutputOptions
from core.errors import UsageError
from tests.build.conftest import Builder
from tests.fixtures.images import Buildah, require_tools, run

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot sandbox needs root")
DOCKERFILE = ("FROM {base}\nCOPY app.txt /app/app.txt\nRUN echo ran > /ran\n"
              'CMD ["cat", "/ran"]\n')


@needs_root
def test_reproducible_builds_give_the_same_digest(bb: Builder) -> None:
    dockerfile = DOCKERFILE.format(base=bb.busybox)
    first = bb.build(dockerfile, {"app.txt": "x"}, tag="test/repro:1", reproducible=True)
    second = bb.build(dockerfile, {"app.txt": "x"}, tag="test/repro:2", reproducible=True)
    assert first.digest == second.digest
    config = bb.config("test/repro:1")
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert config["history"][-1]["created"] == "1970-01-01T00:00:00Z"
    epoch = bb.build(dockerfile, {"app.txt": "x"}, tag="test/repro:3", source_date_epoch=1700000000)
    assert bb.config("test/repro:3")["created"] == "2023-11-14T22:13:20Z"
    assert epoch.digest != first.digest


@needs_root
def test_oci_format_with_zstd_layers(bb: Builder) -> None:
    output = OutputOptions(destinations=(bb.image("test/oci:1"),), image_format="oci",
                           compression="zstd")
    result = bb.build(DOCKERFILE.format(base=bb.busybox), {"app.txt": "x"}, output=output)
    manifest = bb.manifest("test/oci:1")
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    types = [layer["mediaType"] for layer in manifest["layers"]]
    assert types[0] == "application/vnd.oci.image.layer.v1.tar+gzip"  # the base, unchanged
    assert types[1:] == ["application/vnd.oci.image.layer.v1.tar+zstd"] * 2
    assert result.media_type == manifest["mediaType"]
    last = bb.registry.blob_data_path(manifest["layers"][-1]["digest"]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(zstandard.ZstdDecompressor().decompressobj()
                                         .decompress(last))) as archive:
        member = archive.extractfile("ran")
        assert member is not None and member.read() == b"ran\n"
    # skopeo (containers/image, not our code) accepts the image and its zstd layers
    run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
         f"docker://{bb.image('test/oci:1')}", f"oci:{bb.tmp / 'ocicopy'}:t"])


def test_zstd_needs_oci(builder: Builder) -> None:
    with pytest.raises(UsageError, match="zstd"):
        builder.build("FROM scratch\n", output=OutputOptions(compression="zstd"))


def test_tar_layout_and_digest_files_without_push(builder: Builder, tmp_path: Path) -> None:
    require_tools("skopeo", "umoci")
    output = OutputOptions(destinations=(builder.image("test/local:v1"),), no_push=True,
                           tar_path=tmp_path / "image.tar",
                           oci_layout_path=tmp_path / "layout",
                           digest_file=tmp_path / "digest",
                           image_name_with_digest_file=tmp_path / "names")
    result = builder.build("FROM scratch\nCOPY a /a\n", {"a": "content"}, output=output)
    assert result.destinations == ()
    with pytest.raises(AssertionError):
        builder.manifest("test/local:v1")
    assert (tmp_path / "digest").read_text() == result.digest
    assert (tmp_path / "names").read_text() == (
        f"{builder.registry.host}/test/local@{result.digest}\n")
    run(["skopeo", "copy", "--quiet", f"docker-archive:{tmp_path / 'image.tar'}",
         f"oci:{tmp_path / 'fromtar'}:t"])
    run(["umoci", "unpack", "--image", f"{tmp_path / 'fromtar'}:t", str(tmp_path / "b1")])
    assert (tmp_path / "b1/rootfs/a").read_text() == "content"
    run(["umoci", "unpack", "--image", f"{tmp_path / 'layout'}:v1", str(tmp_path / "b2")])
    assert (tmp_path / "b2/rootfs/a").read_text() == "content"
    index = json.loads((tmp_path / "layout/index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"


@needs_root
def test_buildah_runs_the_pushed_image(bb: Builder, tmp_path: Path) -> None:
    require_tools("buildah")
    dockerfile = (f"FROM {bb.busybox}\nCOPY app.txt /app/app.txt\n"
                  "RUN echo \"made by RUN\" > /made\nWORKDIR /app\n")
    bb.build(dockerfile, {"app.txt": "from COPY"}, tag="test/runnable:1")
    buildah = Buildah(tmp_path / "buildah")
    container = buildah("from", "--tls-verify=false", "--quiet", bb.image("test/runnable:1"))
    out = buildah("run", "--isolation", "chroot", container, "--", "/bin/sh", "-c",
                  "cat /made app.txt; echo; pwd")
    assert out.splitlines() == ["made by RUN", "from COPY", "/app"]
    buildah("rm", container)
    subprocess.run(["buildah", "--storage-driver", "vfs", "--root", str(tmp_path / "buildah/root"),
                    "--runroot", str(tmp_path / "buildah/run"), "rmi", "--all", "--force"],
                   capture_output=True, check=False)


@needs_root
def test_the_hello_example_builds_and_runs(bb: Builder, tmp_path: Path) -> None:
    require_tools("buildah")
    bb.build(f"FROM {bb.busybox}\nRUN /bin/busybox --install -s /bin\n",
             tag="test/fullbusybox:1")
    example = Path(__file__).resolve().parents[2] / "examples" / "hello"
    result = bb.build("unused", tag="test/hello:1", context=str(example),
                      build_args={"BASE": bb.image("test/fullbusybox:1")})
    assert result.sandbox == "chroot"
    config = bb.config("test/hello:1")
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/hello"]
    assert config["config"]["User"] == "nobody"
    buildah = Buildah(tmp_path / "buildah")
    container = buildah("from", "--tls-verify=false", "--quiet", bb.image("test/hello:1"))
    out = buildah("run", "--isolation", "chroot", "--user", "nobody", container, "--",
                  "/usr/local/bin/hello")
    assert out == "hello from bucketbuild"
