"""Multi-stage builds: COPY --from, stages built on stages, --target and pruning."""

from __future__ import annotations

import os

import pytest

from core.build.events import StepStarted
from tests.build.conftest import Builder, Recorder

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot sandbox needs root")


@needs_root
def test_copy_from_an_earlier_stage(bb: Builder) -> None:
    dockerfile = (
        f"FROM {bb.busybox} AS Builder\n"
        "RUN echo built > /artifact && busybox mkdir -p /out/sub && echo x > /out/sub/x\n"
        "FROM scratch\n"
        "COPY --from=builder /artifact /app/artifact\n"
        "COPY --from=0 /out /app/out\n"
    )
    bb.build(dockerfile, tag="test/multi:1")
    rootfs = bb.unpack("test/multi:1")
    assert (rootfs / "app/artifact").read_text() == "built\n"
    assert (rootfs / "app/out/sub/x").read_text() == "x\n"
    assert sorted(os.listdir(rootfs)) == ["app"]


@needs_root
def test_stage_built_on_a_stage_and_target_prunes(bb: Builder) -> None:
    recorder = Recorder()
    dockerfile = (
        f"FROM {bb.busybox} AS base\n"
        "ENV STAGE=base\n"
        "RUN echo one > /one\n"
        "FROM base AS child\n"
        "RUN echo $STAGE-two > /two\n"
        "FROM scratch AS unused\n"
        "COPY missing-file /nothing\n"
        "FROM child\n"
        "RUN echo three > /three\n"
    )
    bb.build(dockerfile, tag="test/target:1", target="child", recorder=recorder)
    rootfs = bb.unpack("test/target:1")
    assert (rootfs / "one").read_text() == "one\n"
    assert (rootfs / "two").read_text() == "base-two\n"
    assert not (rootfs / "three").exists()
    config = bb.config("test/target:1")
    assert "STAGE=base" in config["config"]["Env"]


def test_copy_from_an_image(bb: Builder) -> None:
    dockerfile = f"FROM scratch\nCOPY --from={bb.busybox} /etc/passwd /passwd\n"
    bb.build(dockerfile, tag="test/fromimage:1")
    rootfs = bb.unpack("test/fromimage:1")
    assert (rootfs / "passwd").read_text().startswith("root:x:0:0:")


def test_onbuild_triggers_of_a_base_image_run_first(builder: Builder) -> None:
    builder.build("FROM scratch\nONBUILD COPY trigger.txt /from-trigger\n", tag="test/parent:1")
    assert builder.config("test/parent:1")["config"]["OnBuild"] == [
        "COPY trigger.txt /from-trigger"]
    recorder = Recorder()
    builder.build(f"FROM {builder.image('test/parent:1')}\nCOPY own.txt /own\n",
                  {"trigger.txt": "t", "own.txt": "o"}, tag="test/child:1", recorder=recorder)
    config = builder.config("test/child:1")
    assert "OnBuild" not in config["config"]
    assert [h["created_by"] for h in config["history"]] == [
        "COPY trigger.txt /from-trigger # buildkit", "COPY own.txt /own # buildkit"]
    started = [e.instruction for e in recorder.events if isinstance(e, StepStarted)]
    assert started[1] == "ONBUILD COPY trigger.txt /from-trigger"
    rootfs = builder.unpack("test/child:1")
    assert (rootfs / "from-trigger").read_text() == "t"


@needs_root
def test_build_args_reach_run_and_its_history(bb: Builder) -> None:
    recorder = Recorder()
    dockerfile = (f"ARG BASE={bb.busybox}\nFROM $BASE\nARG GREETING=hello\nARG UNSET\n"
                  "ENV FROM_ENV=env\nRUN echo $GREETING-$FROM_ENV-${UNSET:-none}\n")
    bb.build(dockerfile, tag="test/args:1", recorder=recorder,
             build_args={"GREETING": "hi", "NOT_DECLARED": "x"})
    assert "hi-env-none" in recorder.output()
    history = bb.config("test/args:1")["history"]
    assert history[-1]["created_by"] == (
        "RUN |2 GREETING=hi UNSET= /bin/sh -c echo $GREETING-$FROM_ENV-${UNSET:-none} "
        "# buildkit")
    assert "GREETING=hi" not in bb.config("test/args:1")["config"]["Env"]
