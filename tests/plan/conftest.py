"""Fixtures for the planner tests: plans and programs from Dockerfile text."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from core.dockerfile.parser import parse_dockerfile
from core.image.config import ContainerConfig, ImageConfig
from core.image.manifest import Platform
from core.image.platform import parse_platform
from core.plan import BuildPlan, StageBase, StageProgram, expand_planned, plan_build

AMD64 = parse_platform("linux/amd64")

PlanOf = Callable[..., BuildPlan]
ProgramOf = Callable[..., StageProgram]


def make_plan(text: str, *, build_args: Mapping[str, str] | None = None,
              target: str | None = None, build_platform: Platform = AMD64,
              target_platform: Platform = AMD64) -> BuildPlan:
    return plan_build(parse_dockerfile(text), build_args=build_args or {}, target=target,
                      build_platform=build_platform, target_platform=target_platform)


def image_config(*, env: tuple[str, ...] = (), working_dir: str = "",
                 on_build: tuple[str, ...] = ()) -> ImageConfig:
    return ImageConfig(architecture="amd64", os="linux",
                       config=ContainerConfig(env=env, working_dir=working_dir,
                                              on_build=on_build))


def make_program(text: str, *, stage: int = -1, base: ImageConfig | None = None,
                 build_args: Mapping[str, str] | None = None) -> StageProgram:
    """Expand one stage (the last by default), expanding the stages it is built on first."""
    plan = make_plan(text, build_args=build_args)
    index = stage if stage >= 0 else len(plan.all_stages) + stage
    return _program(plan, index, base)


def _program(plan: BuildPlan, index: int, base: ImageConfig | None) -> StageProgram:
    stage = plan.stage(index)
    if isinstance(stage.base, StageBase):
        parent = _program(plan, stage.base.index, base)
        return expand_planned(plan, index, base_config=None, parent=parent)
    return expand_planned(plan, index, base_config=base)


@pytest.fixture
def plan_of() -> PlanOf:
    return make_plan


@pytest.fixture
def program_of() -> ProgramOf:
    return make_program
