"""Build arguments: global scope, redeclaration, --build-arg, warnings, proxies, platform args."""

from __future__ import annotations

import pytest

from core.dockerfile.instructions import ArgDefinition, ArgInstruction, RunInstruction
from core.image.platform import parse_platform
from core.plan import ArgValue, Step
from core.plan.args import platform_args, proxy_env, unconsumed_warning
from tests.plan.conftest import AMD64, PlanOf, ProgramOf, image_config


def _run(steps: tuple[Step, ...]) -> Step:
    runs = [step for step in steps if isinstance(step.instruction, RunInstruction)]
    assert runs, "no RUN step"
    return runs[-1]


def test_global_arg_is_not_visible_in_the_stage(program_of: ProgramOf) -> None:
    program = program_of("ARG V=1\nFROM alpine\nRUN echo $V\n")
    step = _run(program.steps)
    assert "V" not in step.env
    assert step.build_args == ()


def test_redeclared_global_arg_takes_the_global_value(program_of: ProgramOf) -> None:
    program = program_of("ARG V=1\nFROM alpine\nARG V\nRUN echo $V\n")
    step = _run(program.steps)
    assert step.env["V"] == "1"
    assert step.build_args == (ArgValue("V", "1"),)
    arg = program.steps[0].instruction
    assert isinstance(arg, ArgInstruction)
    assert arg.args == (ArgDefinition("V", "1"),)


def test_build_arg_overrides_global_and_stage_defaults(program_of: ProgramOf) -> None:
    text = "ARG V=1\nFROM alpine\nARG V\nARG W=default\nRUN echo $V $W\n"
    program = program_of(text, build_args={"V": "cli", "W": "also"})
    step = _run(program.steps)
    assert (step.env["V"], step.env["W"]) == ("cli", "also")
    assert program.consumed_build_args == {"V", "W"}


def test_build_arg_value_is_not_expanded(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG V\nRUN x\n", build_args={"V": "$HOME"})
    assert _run(program.steps).env["V"] == "$HOME"


def test_stage_default_is_expanded_with_earlier_args(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG A=x B=${A}y\nARG C=$B-$A\nRUN x\n")
    env = _run(program.steps).env
    assert (env["A"], env["B"], env["C"]) == ("x", "xy", "xy-x")


def test_global_defaults_are_expanded_in_order(plan_of: PlanOf) -> None:
    plan = plan_of("ARG A=x\nARG B=${A}y C=$TARGETOS\nFROM alpine:$B$C\n")
    assert plan.global_args["B"] == "xy"
    assert plan.target_stage.base.ref == "alpine:xylinux"  # type: ignore[union-attr]


def test_arg_without_any_value_is_declared_but_unset(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG EMPTY\nRUN x\n")
    step = _run(program.steps)
    assert "EMPTY" not in step.env
    assert step.build_args == (ArgValue("EMPTY", None),)


def test_args_are_scoped_to_their_stage(program_of: ProgramOf) -> None:
    text = "FROM alpine AS one\nARG A=1\nFROM alpine\nRUN x\n"
    assert "A" not in _run(program_of(text).steps).env


def test_child_stage_inherits_args_and_env(program_of: ProgramOf) -> None:
    text = ("ARG G=global\nFROM alpine AS a\nARG G\nARG LOCAL=local\nENV E=env\n"
            "FROM a AS c\nRUN echo\n")
    step = _run(program_of(text).steps)
    assert (step.env["G"], step.env["LOCAL"], step.env["E"]) == ("global", "local", "env")
    assert step.build_args == (ArgValue("G", "global"), ArgValue("LOCAL", "local"))


def test_env_after_arg_shadows_it(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG V=arg\nENV V=env\nRUN echo $V\nENV W=$V\n")
    step = _run(program.steps)
    assert step.env["V"] == "env"
    assert step.build_args == (ArgValue("V", "env"),)
    assert program.steps[-1].instruction.env[0].value == "env"  # type: ignore[union-attr]


def test_base_env_shadows_an_arg_declared_before_it(program_of: ProgramOf) -> None:
    text = "FROM alpine\nARG MODE\nRUN x\n"
    base = image_config(env=("MODE=image",))
    assert _run(program_of(text, base=base).steps).env["MODE"] == "image"
    overridden = program_of(text, base=base, build_args={"MODE": "cli"})
    assert _run(overridden.steps).env["MODE"] == "cli"


def test_unconsumed_build_args_warning(plan_of: PlanOf) -> None:
    plan = plan_of("ARG G\nFROM alpine AS a\nARG S\nFROM alpine\n",
                   build_args={"G": "1", "S": "2", "ZED": "3", "ALPHA": "4",
                               "http_proxy": "p", "TARGETARCH": "arm64"})
    assert plan.warnings == (
        "[Warning] One or more build-args [ALPHA ZED] were not consumed",)


def test_no_warning_when_all_consumed() -> None:
    assert unconsumed_warning(["A"], ["A", "B"]) is None


def test_proxy_args_reach_run_without_declaration(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nENV X=1\nRUN curl example.com\n",
                         build_args={"HTTP_PROXY": "http://p:3128", "no_proxy": "local"})
    step = _run(program.steps)
    assert step.env["HTTP_PROXY"] == step.env["http_proxy"] == "http://p:3128"
    assert step.env["NO_PROXY"] == step.env["no_proxy"] == "local"
    assert step.build_args == ()
    assert "HTTP_PROXY" not in program.steps[0].env
    assert "HTTP_PROXY" not in program.env
    assert program.consumed_build_args == frozenset()


def test_declared_proxy_arg_is_a_normal_arg(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG HTTPS_PROXY\nRUN x\n",
                         build_args={"HTTPS_PROXY": "http://p"})
    step = _run(program.steps)
    assert step.build_args == (ArgValue("HTTPS_PROXY", "http://p"),)
    assert step.env["https_proxy"] == "http://p"


def test_proxy_env_prefers_lower_case_and_skips_empty() -> None:
    env = proxy_env({"HTTP_PROXY": "upper", "http_proxy": "lower", "FTP_PROXY": "",
                     "Other": "x"})
    assert dict(env) == {"HTTP_PROXY": "lower", "http_proxy": "lower"}


def test_platform_args_are_global_only(plan_of: PlanOf, program_of: ProgramOf) -> None:
    plan = plan_of("FROM alpine:$TARGETARCH\n")
    assert plan.target_stage.base.ref == "alpine:amd64"  # type: ignore[union-attr]
    assert "TARGETARCH" not in _run(program_of("FROM alpine\nRUN x\n").steps).env
    program = program_of("FROM alpine\nARG TARGETARCH TARGETPLATFORM BUILDOS\nRUN x\n")
    env = _run(program.steps).env
    assert (env["TARGETARCH"], env["TARGETPLATFORM"], env["BUILDOS"]) == (
        "amd64", "linux/amd64", "linux")


@pytest.mark.parametrize(("platform", "expected"), [
    ("linux/amd64", ("linux/amd64", "linux", "amd64", "")),
    ("linux/arm64", ("linux/arm64", "linux", "arm64", "")),
    ("linux/arm64/v8", ("linux/arm64", "linux", "arm64", "")),
    ("linux/arm/v7", ("linux/arm/v7", "linux", "arm", "v7")),
    ("linux/arm/v6", ("linux/arm/v6", "linux", "arm", "v6")),
    ("windows/amd64", ("windows/amd64", "windows", "amd64", "")),
])
def test_platform_arg_values(platform: str, expected: tuple[str, ...]) -> None:
    args = platform_args(build_platform=AMD64, target_platform=parse_platform(platform),
                         build_args={})
    names = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")
    assert tuple(args[name] for name in names) == expected
    assert args["BUILDPLATFORM"] == "linux/amd64"
    assert args["BUILDVARIANT"] == ""


def test_build_arg_overrides_a_platform_arg(program_of: ProgramOf) -> None:
    program = program_of("FROM alpine\nARG TARGETARCH\nRUN x\n",
                         build_args={"TARGETARCH": "riscv64"})
    assert _run(program.steps).env["TARGETARCH"] == "riscv64"


def test_stage_arg_default_beats_the_global_value(program_of: ProgramOf) -> None:
    program = program_of("ARG V=global\nFROM alpine\nARG V=stage\nRUN x\n")
    assert _run(program.steps).env["V"] == "stage"


def test_arg_default_referencing_itself(program_of: ProgramOf) -> None:
    program = program_of("ARG PATHS=/a\nFROM alpine\nARG PATHS\nARG PATHS=$PATHS:/b\nRUN x\n")
    assert _run(program.steps).env["PATHS"] == "/a:/b"
