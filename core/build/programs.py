"""From a plan to stage programs: base images resolved, ONBUILD triggers folded in, expanded.

Base images' configs are fetched (manifests and configs only) before any stage runs: their
ONBUILD triggers may copy from other stages or images, which `with_base_triggers` adds to the
plan, so resolution repeats until the plan is stable. A stage built on another stage sees that
stage's own ONBUILD lines as its triggers (BuildKit); those are known from the program, so all
programs, and the total number of steps, are known up front.
"""

from __future__ import annotations

from core.build.bases import ImageResolver
from core.dockerfile.instructions import OnbuildInstruction
from core.image.config import ContainerConfig, ImageConfig
from core.plan import (
    BuildPlan,
    ImageBase,
    StageBase,
    StageProgram,
    expand_planned,
    with_base_triggers,
)

_MAX_ROUNDS = 16


def stage_programs(plan: BuildPlan, resolver: ImageResolver,
                   ) -> tuple[BuildPlan, dict[int, StageProgram]]:
    """The final plan and the expanded program of every stage it builds."""
    for _ in range(_MAX_ROUNDS):
        resolver.resolve_all(plan.images)
        configs = {stage.index: resolver.resolve(stage.base).config for stage in plan.stages
                   if isinstance(stage.base, ImageBase)}
        replanned = with_base_triggers(plan, base_configs=configs)
        if replanned.order == plan.order and replanned.images == plan.images:
            plan = replanned
            break
        plan = replanned
    programs: dict[int, StageProgram] = {}
    for index in plan.order:
        stage = plan.stage(index)
        base = stage.base
        if isinstance(base, ImageBase):
            programs[index] = expand_planned(plan, index,
                                             base_config=resolver.resolve(base).config)
        elif isinstance(base, StageBase):
            parent = programs[base.index]
            programs[index] = expand_planned(plan, index, base_config=_triggers_of(parent),
                                             parent=parent)
        else:
            programs[index] = expand_planned(plan, index, base_config=None)
    return plan, programs


def _triggers_of(program: StageProgram) -> ImageConfig:
    """A config carrying only the stage's own ONBUILD lines (what a child stage runs)."""
    triggers = tuple(step.instruction.expression for step in program.steps
                     if isinstance(step.instruction, OnbuildInstruction) and not step.onbuild)
    platform = program.stage.platform
    return ImageConfig(architecture=platform.architecture, os=platform.os,
                       config=ContainerConfig(on_build=triggers))


def last_users(plan: BuildPlan, programs: dict[int, StageProgram]) -> dict[int, int]:
    """For each stage, the stage that may take over its tree: the child built on it, when
    that child is the last stage to use it and uses it only as its base."""
    users: dict[int, list[int]] = {}
    for index in plan.order:
        for dependency in plan.stage(index).dependencies:
            users.setdefault(dependency, []).append(index)
    result: dict[int, int] = {}
    for parent, children in users.items():
        last = max(children)
        program = programs.get(last)
        if program is None or parent == plan.target:
            continue
        if program.stage.base == StageBase(parent) and not _copies_from(program, parent):
            result[parent] = last
    return result


def _copies_from(program: StageProgram, index: int) -> bool:
    wanted = StageBase(index)
    return any(step.source == wanted or wanted in step.mount_sources for step in program.steps)
