"""FROM scratch builds: COPY layers written straight from the context."""

from __future__ import annotations

import tarfile
from pathlib import Path

from core.build.events import StepFinished, StepStarted
from tests.build.conftest import Builder, Recorder, write_context


def test_scratch_copy_pushes_an_image_umoci_unpacks(builder: Builder) -> None:
    result = builder.build("FROM scratch\nCOPY hello.txt /hello.txt\nCOPY dir /opt/dir/\n",
                           {"hello.txt": "hi\n", "dir/a": "A", "dir/sub/b": "B"},
                           tag="test/scratch:1")
    manifest = builder.manifest("test/scratch:1")
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert len(manifest["layers"]) == 2
    assert result.destinations == (f"{builder.registry.host}/test/scratch:1",)
    rootfs = builder.unpack("test/scratch:1")
    assert (rootfs / "hello.txt").read_text() == "hi\n"
    assert (rootfs / "opt/dir/a").read_text() == "A"
    assert (rootfs / "opt/dir/sub/b").read_text() == "B"
    config = builder.config("test/scratch:1")
    assert config["config"]["WorkingDir"] == "/"
    assert [h["created_by"] for h in config["history"]] == [
        "COPY hello.txt /hello.txt # buildkit", "COPY dir /opt/dir/ # buildkit"]


def test_tar_context_sub_path_and_dockerfile_name(builder: Builder, tmp_path: Path) -> None:
    source = write_context(tmp_path / "src", {"app/build.Dockerfile": "FROM scratch\n"
                                              "COPY data.txt /data.txt\n",
                                              "app/data.txt": "from tar"})
    archive = tmp_path / "context.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "app", arcname="app")
    recorder = Recorder()
    result = builder.build("unused", tag="test/tarctx:1", recorder=recorder,
                           context=f"tar://{archive}", context_sub_path="app",
                           dockerfile="build.Dockerfile",
                           build_args={"UNDECLARED": "x"})
    assert (builder.unpack("test/tarctx:1") / "data.txt").read_text() == "from tar"
    assert any("UNDECLARED" in warning for warning in result.warnings)
    assert [e.number for e in recorder.events if isinstance(e, StepStarted)] == [1, 2]
    assert {e.total for e in recorder.events if isinstance(e, StepStarted)} == {2}
    finished = [e for e in recorder.events if isinstance(e, StepFinished)]
    assert finished[0].layer_size is None and (finished[1].layer_size or 0) > 0
