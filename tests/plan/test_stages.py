"""Stages: names, bases, references between stages, --target, pruning and build order."""

from __future__ import annotations

import pytest

from core.dockerfile.instructions import CopyInstruction
from core.errors import DockerfileError
from core.image.platform import parse_platform
from core.plan import ImageBase, ScratchBase, StageBase, with_base_triggers
from tests.plan.conftest import AMD64, PlanOf, image_config

ARM64 = parse_platform("linux/arm64")


def test_single_stage_is_the_target(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine\nRUN true\n")
    assert plan.order == (0,)
    assert plan.target == 0
    stage = plan.target_stage
    assert stage.name == ""
    assert stage.display_name == "stage-0"
    assert stage.base == ImageBase("alpine", AMD64)
    assert [type(i).__name__ for i in stage.instructions] == ["RunInstruction"]
    assert plan.images == (ImageBase("alpine", AMD64),)


def test_stage_names_are_lower_cased_and_found_case_insensitively(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine AS Builder\nFROM BUILDER AS app\nFROM builder\n")
    assert [stage.name for stage in plan.all_stages] == ["builder", "app", ""]
    assert plan.stage(1).base == StageBase(0)
    assert plan.stage(2).base == StageBase(0)
    assert plan.order == (0, 2)


def test_duplicate_stage_name_is_an_error_at_its_line(plan_of: PlanOf) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan_of("FROM alpine AS a\nRUN true\nFROM busybox AS A\n")
    assert caught.value.line == 3
    assert caught.value.source_line == "FROM busybox AS A"
    assert 'duplicate stage name "a"' in caught.value.message
    assert "line 1" in caught.value.message


def test_a_later_stage_name_is_an_image_reference_in_from(plan_of: PlanOf) -> None:
    plan = plan_of("FROM tools AS first\nFROM alpine AS tools\nFROM first\n")
    assert plan.stage(0).base == ImageBase("tools", AMD64)
    assert plan.stage(2).base == StageBase(0)
    assert plan.order == (0, 2)
    assert plan.images == (ImageBase("tools", AMD64),)


def test_a_stage_named_like_its_base_image_uses_the_image(plan_of: PlanOf) -> None:
    plan = plan_of("FROM node AS node\nFROM node\n")
    assert plan.stage(0).base == ImageBase("node", AMD64)
    assert plan.stage(1).base == StageBase(0)


def test_from_scratch(plan_of: PlanOf) -> None:
    plan = plan_of("FROM scratch\nCOPY a /a\n")
    assert plan.target_stage.base == ScratchBase()
    assert plan.images == ()


def test_copy_from_stage_name_index_and_image(plan_of: PlanOf) -> None:
    plan = plan_of(
        "FROM alpine AS a\nFROM busybox AS b\nFROM scratch\n"
        "COPY --from=A /x /x\nCOPY --from=1 /y /y\nCOPY --from=nginx:1.25 /z /z\n"
        "COPY --from=scratch /w /w\n"
    )
    final = plan.target_stage
    assert final.dependencies == (0, 1)
    assert final.images == (ImageBase("nginx:1.25", AMD64),)
    assert plan.order == (0, 1, 2)
    assert plan.images == (ImageBase("alpine", AMD64), ImageBase("busybox", AMD64),
                           ImageBase("nginx:1.25", AMD64))


def test_copy_from_image_uses_the_target_platform(plan_of: PlanOf) -> None:
    plan = plan_of("FROM --platform=$BUILDPLATFORM golang AS build\n"
                   "COPY --from=alpine /bin/sh /sh\n",
                   build_platform=AMD64, target_platform=ARM64)
    stage = plan.target_stage
    assert stage.platform == AMD64
    assert stage.base == ImageBase("golang", AMD64)
    assert stage.images == (ImageBase("alpine", ARM64),)


@pytest.mark.parametrize(("word", "message"), [
    ("5", "invalid stage index 5"),
    ("-1", "invalid stage index -1"),
    ("1", 'cannot copy from stage "1", it needs to be defined before current stage "a"'),
    ("0", 'cannot copy from stage "0", it needs to be defined before current stage "a"'),
    ("b", 'cannot copy from stage "b", it needs to be defined before current stage "a"'),
])
def test_copy_from_must_name_an_earlier_stage(plan_of: PlanOf, word: str, message: str) -> None:
    text = f"FROM alpine AS a\nCOPY --from={word} /x /x\nFROM alpine AS b\nCOPY --from=a / /\n"
    with pytest.raises(DockerfileError) as caught:
        plan_of(text)
    assert caught.value.message == message
    assert caught.value.line == 2
    assert caught.value.source_line == f"COPY --from={word} /x /x"


def test_a_pruned_stage_may_copy_from_a_later_stage(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\n")
    assert plan.order == (1,)


@pytest.mark.parametrize("word", ["$STAGE", "${STAGE}", "a\\\\b"])
def test_copy_from_refuses_variables(plan_of: PlanOf, word: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan_of(f"ARG STAGE=a\nFROM alpine AS a\nFROM alpine\nCOPY --from={word} /x /x\n")
    assert "variable expansion is not supported for --from" in caught.value.message
    assert caught.value.line == 4


def test_run_mount_from_stage_and_image(plan_of: PlanOf) -> None:
    plan = plan_of(
        "FROM alpine AS deps\nFROM alpine AS unused\nFROM alpine\n"
        "RUN --mount=from=deps,target=/d --mount=type=cache,from=busybox,target=/c "
        "--mount=type=tmpfs,target=/t true\n"
    )
    assert plan.order == (0, 2)
    assert plan.target_stage.dependencies == (0,)
    assert plan.target_stage.images == (ImageBase("busybox", AMD64),)


def test_target_is_case_insensitive_and_prunes_later_stages(plan_of: PlanOf) -> None:
    text = "FROM alpine AS base\nFROM base AS Build\nFROM base AS test\nFROM build\n"
    plan = plan_of(text, target="BUILD")
    assert plan.target == 1
    assert plan.order == (0, 1)
    assert [stage.index for stage in plan.stages] == [0, 1]


def test_unknown_target_lists_the_stages(plan_of: PlanOf) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan_of("FROM alpine AS build\nFROM alpine AS release\n", target="relase")
    message = caught.value.message
    assert 'target stage "relase" could not be found' in message
    assert "did you mean release?" in message
    assert "stages: build, release" in message


def test_unused_stages_are_pruned(plan_of: PlanOf) -> None:
    plan = plan_of(
        "FROM alpine AS a\nFROM debian AS b\nFROM a AS c\n"
        "FROM ubuntu AS d\nCOPY --from=c /x /x\n"
    )
    assert plan.order == (0, 2, 3)
    assert ImageBase("debian", AMD64) not in plan.images
    assert [stage.index for stage in plan.stages] == [0, 2, 3]
    assert len(plan.all_stages) == 4


def test_build_order_puts_dependencies_first(plan_of: PlanOf) -> None:
    plan = plan_of(
        "FROM alpine AS one\nFROM alpine AS two\nCOPY --from=one / /\n"
        "FROM alpine AS three\nRUN --mount=from=two,target=/t true\nFROM three\n"
        "COPY --from=one / /\n"
    )
    assert plan.order == (0, 1, 2, 3)


def test_from_is_expanded_with_global_args(plan_of: PlanOf) -> None:
    plan = plan_of("ARG REPO=library/alpine\nARG TAG=3\nFROM ${REPO}:$TAG\n",
                   build_args={"TAG": "3.20"})
    assert plan.target_stage.base == ImageBase("library/alpine:3.20", AMD64)
    assert plan.global_args["REPO"] == "library/alpine"


def test_from_naming_a_stage_through_an_arg(plan_of: PlanOf) -> None:
    plan = plan_of("ARG VARIANT=slim\nFROM alpine AS slim\nFROM alpine AS full\nFROM $VARIANT\n")
    assert plan.target_stage.base == StageBase(0)
    assert plan.order == (0, 2)


def test_from_platform_is_expanded_and_inherited_by_child_stages(plan_of: PlanOf) -> None:
    plan = plan_of("FROM --platform=$BUILDPLATFORM golang AS build\nFROM build AS test\n"
                   "FROM alpine\nCOPY --from=test / /\n",
                   build_platform=AMD64, target_platform=ARM64)
    assert plan.stage(0).platform == AMD64
    assert plan.stage(1).platform == AMD64
    assert plan.stage(2).platform == ARM64
    assert plan.stage(2).base == ImageBase("alpine", ARM64)


@pytest.mark.parametrize(("text", "message"), [
    ("FROM $NOPE\n", "base name ($NOPE) should not be blank"),
    ("FROM --platform=$NOPE alpine\n", "empty platform value from expression $NOPE"),
    ("FROM --platform=linux/amd64/v2/x alpine\n", "failed to parse platform"),
    ("FROM Alpine:3\n", 'failed to parse stage name "Alpine:3"'),
    ("FROM ${X:?need_X}\n", "need_X"),
])
def test_from_errors_point_at_the_from_line(plan_of: PlanOf, text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan_of("# comment\n" + text)
    assert message in caught.value.message
    assert caught.value.line == 2
    assert caught.value.source_line == text.rstrip("\n")


def test_platform_of_one_word(plan_of: PlanOf) -> None:
    plan = plan_of("FROM --platform=arm64 alpine AS a\nFROM --platform=linux alpine\n"
                   "COPY --from=a / /\n")
    assert plan.stage(0).platform == ARM64
    assert plan.stage(1).platform.architecture == "amd64"


def test_instruction_before_first_from(plan_of: PlanOf) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan_of("ARG A=1\nRUN echo\nFROM alpine\n")
    assert caught.value.message == "no build stage in current context"
    assert caught.value.line == 2


def test_no_from_at_all(plan_of: PlanOf) -> None:
    with pytest.raises(DockerfileError, match="no stages to build"):
        plan_of("ARG A=1\n")


def test_global_arg_expansion_error_points_at_the_arg(plan_of: PlanOf) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan_of("ARG A=1\nARG B=${A:?x} C=${NOPE:?is_required}\nFROM alpine\n")
    assert caught.value.line == 2
    assert "is_required" in caught.value.message


def test_onbuild_of_a_stage_base_adds_dependencies(plan_of: PlanOf) -> None:
    plan = plan_of(
        "FROM alpine AS assets\nFROM alpine AS base\nONBUILD COPY --from=assets / /\n"
        "FROM base\n"
    )
    assert plan.target_stage.dependencies == (0, 1)
    assert plan.order == (0, 1, 2)
    assert plan.stage(1).dependencies == ()


def test_base_image_triggers_bring_stages_into_the_plan(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine AS assets\nFROM busybox AS tools\nFROM onbuild-image\n")
    assert plan.order == (2,)
    config = image_config(on_build=("COPY --from=assets /a /a",
                                    "RUN --mount=from=redis:7,target=/r true"))
    replanned = with_base_triggers(plan, base_configs={2: config})
    assert replanned.order == (0, 2)
    assert replanned.target_stage.dependencies == (0,)
    assert ImageBase("redis:7", AMD64) in replanned.images
    assert ImageBase("alpine", AMD64) in replanned.images
    assert with_base_triggers(plan, base_configs={2: image_config()}) is plan


def test_base_image_trigger_errors_point_at_from(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine AS a\nFROM onbuild-image\n")
    with pytest.raises(DockerfileError) as caught:
        with_base_triggers(plan, base_configs={1: image_config(on_build=("COPY --from=7 / /",))})
    assert caught.value.message == "invalid stage index 7"
    assert caught.value.line == 2


def test_stage_keeps_instructions_unexpanded(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine\nCOPY $SRC /dst\n")
    (copy,) = plan.target_stage.instructions
    assert isinstance(copy, CopyInstruction)
    assert copy.sources == ("$SRC",)


def test_plan_carries_parse_warnings(plan_of: PlanOf) -> None:
    plan = plan_of("FROM alpine\nRUN a \\\n\n  b\n")
    assert any("Empty continuation line" in warning for warning in plan.warnings)


def test_stage_base_trigger_naming_a_later_stage(plan_of: PlanOf) -> None:
    text = ("FROM alpine AS base\nONBUILD COPY --from=later / /\nFROM base AS child\n"
            "FROM alpine AS later\n")
    assert plan_of(text).order == (2,)
    with pytest.raises(DockerfileError) as caught:
        plan_of(text, target="child")
    assert caught.value.line == 3
    assert "ONBUILD trigger" in caught.value.message
