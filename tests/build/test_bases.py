"""Base images: platforms, media types across formats, other registries, deadlines."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from core.build.options import BuildOptions, OutputOptions
from core.build.pipeline import run_build
from core.errors import DeadlineError, UsageError
from tests.build.conftest import Builder, Recorder, write_context
from tests.fixtures.images import skopeo_inspect_raw
from tests.fixtures.registry import RegistryServer, make_client


def test_platform_is_selected_from_an_index(bb: Builder) -> None:
    assert bb.base is not None
    dockerfile = f"FROM {bb.base.host}/{bb.base.multi}\nCOPY x /x\n"
    bb.build(dockerfile, {"x": "x"}, tag="test/arm:1", platform="linux/arm64")
    config = bb.config("test/arm:1")
    assert (config["os"], config["architecture"], config.get("variant")) == (
        "linux", "arm64", "v8")
    rootfs = bb.unpack("test/arm:1")
    assert (rootfs / "etc/bucketbuild-marker").read_text() == bb.base.markers["arm64"]


def test_oci_base_in_a_docker_image(bb: Builder) -> None:
    assert bb.base is not None
    bb.build(f"FROM {bb.base.host}/{bb.base.oci_gzip}\nCOPY x /x\n", {"x": "x"},
             tag="test/ocibase:1")
    manifest = bb.manifest("test/ocibase:1")
    assert {layer["mediaType"] for layer in manifest["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"}
    assert (bb.unpack("test/ocibase:1") / "x").read_text() == "x"


def test_zstd_base_needs_the_oci_format(bb: Builder) -> None:
    assert bb.base is not None
    with pytest.raises(UsageError, match="zstd"):
        bb.build(f"FROM {bb.base.host}/{bb.base.oci_zstd}\nENV A=1\n")


def test_push_to_another_registry_copies_base_layers(bb: Builder, tmp_path: Path,
                                                     fresh_registry: RegistryServer) -> None:
    context = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {bb.busybox}\nENV A=1\n"})
    client = make_client(bb.registry.host, fresh_registry.host)
    destinations = (f"{fresh_registry.host}/copy/app:1", f"{fresh_registry.host}/copy/other:2")
    options = BuildOptions(context=str(context), work_dir=tmp_path / "work",
                           output=OutputOptions(destinations=destinations))
    try:
        result = run_build(options, events=Recorder(), registry=client)
    finally:
        client.close()
    assert len(result.destinations) == 2
    raw = skopeo_inspect_raw(fresh_registry.host, "copy/other:2")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == result.digest


def test_deadline_stops_the_build_before_a_step(builder: Builder) -> None:
    with pytest.raises(DeadlineError):
        builder.build("FROM scratch\nENV A=1\n", deadline=time.monotonic() - 1)


def test_work_dir_is_cleaned_up(builder: Builder, tmp_path: Path) -> None:
    builder.build("FROM scratch\nCOPY x /x\n", {"x": "x"})
    work = tmp_path / f"work{builder.counter}"
    assert sorted(p.name for p in work.iterdir()) == ["cache"]
