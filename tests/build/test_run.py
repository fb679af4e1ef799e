"""FROM busybox + RUN in the chroot sandbox: files created, changed, deleted; users; failures."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from core.errors import StepError
from tests.build.conftest import Builder, Recorder

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot sandbox needs root")


def test_run_creates_modifies_and_deletes(bb: Builder) -> None:
    recorder = Recorder()
    dockerfile = (
        f"FROM {bb.busybox}\n"
        "RUN echo made > /made && echo changed > /etc/bucketbuild-marker && "
        "busybox rm /bin/ls && echo out-$((1+2))\n"
    )
    result = bb.build(dockerfile, tag="test/run:1", recorder=recorder)
    assert "out-3" in recorder.output()
    assert result.sandbox == "chroot"
    rootfs = bb.unpack("test/run:1")
    assert (rootfs / "made").read_text() == "made\n"
    assert (rootfs / "etc/bucketbuild-marker").read_text() == "changed\n"
    assert not (rootfs / "bin/ls").exists()
    assert (rootfs / "bin/cat").is_symlink()
    config = bb.config("test/run:1")
    assert config["history"][-1]["created_by"] == (
        "RUN /bin/sh -c echo made > /made && echo changed > /etc/bucketbuild-marker && "
        "busybox rm /bin/ls && echo out-$((1+2)) # buildkit")
    assert len(config["rootfs"]["diff_ids"]) == 2


def test_failing_run_raises_its_exit_code_and_pushes_nothing(bb: Builder) -> None:
    with pytest.raises(StepError) as caught:
        bb.build(f"FROM {bb.busybox}\nRUN echo start\nRUN exit 3\n", tag="test/fail:1")
    assert caught.value.exit_code == 3
    assert caught.value.span is not None and caught.value.span.start_line == 3
    with pytest.raises(AssertionError, match="skopeo inspect failed"):
        bb.manifest("test/fail:1")


def test_run_layer_holds_only_the_change(bb: Builder) -> None:
    bb.build(f"FROM {bb.busybox}\nRUN echo x > /x\nRUN --network=none echo y > /tmp/y\n",
             tag="test/minimal:1")
    manifest = bb.manifest("test/minimal:1")
    names = []
    for layer in manifest["layers"][1:]:
        data = gzip.decompress(bb.registry.blob_data_path(layer["digest"]).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            names.append(archive.getnames())
    assert names == [["x"], ["tmp", "tmp/y"]]
