"""The build plan: stages, their bases and dependencies, the target, pruning and build order.

`plan_build` splits the typed instructions at each FROM, evaluates the global ARGs, expands
every FROM (image and `--platform`) with them, resolves stage references, picks the target and
keeps only the stages it needs. Base images' ONBUILD triggers can add dependencies once their
configs are known: `with_base_triggers` plans again with them. Both are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from core.dockerfile.ast import ParseResult
from core.dockerfile.convert import convert_node
from core.dockerfile.flags import did_you_mean
from core.dockerfile.instructions import (
    ArgInstruction,
    FromInstruction,
    Instruction,
    OnbuildInstruction,
)
from core.dockerfile.shell import Lexer
from core.errors import DockerfileError, ImageError
from core.image.config import ImageConfig
from core.image.manifest import Platform
from core.image.platform import normalize_platform, parse_platform
from core.plan.args import global_args, platform_args, unconsumed_warning
from core.plan.expansion import located
from core.plan.model import BuildPlan, Stage
from core.plan.onbuild import parse_triggers
from core.plan.sources import (
    ImageBase,
    Reference,
    StageBase,
    StageDirectory,
    check_earlier,
    references,
)

_KNOWN_OS: Final = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
    "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos",
})


@dataclass(frozen=True)
class _Settings:
    """What every stage of one plan is resolved with."""

    lexer: Lexer
    scope: Mapping[str, str]
    build_platform: Platform
    target_platform: Platform
    filename: str


def plan_build(
    parsed: ParseResult, *, build_args: Mapping[str, str], target: str | None,
    build_platform: Platform, target_platform: Platform, filename: str | None = None,
) -> BuildPlan:
    """Plan the build of `target` (the last stage when None); raises DockerfileError."""
    name = filename if filename is not None else parsed.filename
    instructions = tuple([convert_node(node, filename=name) for node in parsed.nodes])
    meta, groups = _split(instructions, name)
    lexer = Lexer(parsed.escape)
    automatic = platform_args(build_platform=build_platform, target_platform=target_platform,
                              build_args=build_args)
    scope = global_args(meta, automatic=automatic, build_args=build_args, lexer=lexer,
                        filename=name)
    settings = _Settings(lexer, scope, build_platform, target_platform, name)
    stages = _with_dependencies(_stages(groups, settings), {}, name)
    warning = unconsumed_warning(build_args, _declared(instructions))
    warnings = (*parsed.warnings, *(() if warning is None else (warning,)))
    return _assemble(
        BuildPlan(stages=(), order=(), target=_target(stages, target), images=(),
                  warnings=warnings, all_stages=stages, global_args=scope,
                  platform_args=automatic, build_args=MappingProxyType(dict(build_args)),
                  escape=parsed.escape, filename=name))


def with_base_triggers(plan: BuildPlan, *, base_configs: Mapping[int, ImageConfig]) -> BuildPlan:
    """Plan again, adding what the base images' ONBUILD triggers copy or mount from.

    `base_configs` maps stage indices to the configs of their base images; stages whose
    triggers name another stage may bring it (and its own base) into the plan.
    """
    triggers = {index: config.config.on_build for index, config in base_configs.items()
                if isinstance(plan.stage(index).base, ImageBase) and config.config.on_build}
    if not triggers:
        return plan
    stages = _with_dependencies(plan.all_stages, triggers, plan.filename)
    return _assemble(replace(plan, all_stages=stages))


def _split(
    instructions: Sequence[Instruction], filename: str,
) -> tuple[list[ArgInstruction], list[tuple[FromInstruction, list[Instruction]]]]:
    """Global ARGs (before the first FROM) and, per FROM, the instructions that follow it."""
    meta: list[ArgInstruction] = []
    groups: list[tuple[FromInstruction, list[Instruction]]] = []
    for instruction in instructions:
        if isinstance(instruction, FromInstruction):
            groups.append((instruction, []))
        elif groups:
            groups[-1][1].append(instruction)
        elif isinstance(instruction, ArgInstruction):
            meta.append(instruction)
        else:
            raise located(DockerfileError("no build stage in current context"), instruction,
                          filename)
    if not groups:
        raise DockerfileError("dockerfile contains no stages to build", file=filename)
    return meta, groups


def _stages(groups: Sequence[tuple[FromInstruction, list[Instruction]]],
            settings: _Settings) -> tuple[Stage, ...]:
    """One Stage per FROM, its base resolved against the stages before it."""
    names: dict[str, int] = {}
    for index, (instruction, _) in enumerate(groups):
        if instruction.stage_name in names:
            first = groups[names[instruction.stage_name]][0].span.start_line
            error = DockerfileError(f'duplicate stage name "{instruction.stage_name}" '
                                    f"(first defined on line {first})")
            raise located(error, instruction, settings.filename)
        if instruction.stage_name:
            names[instruction.stage_name] = index
    directory = StageDirectory(MappingProxyType(names), len(groups), settings.target_platform,
                               settings.lexer.escape)
    stages: list[Stage] = []
    for index, (instruction, body) in enumerate(groups):
        try:
            stages.append(_stage(index, instruction, tuple(body), stages, directory, settings))
        except DockerfileError as error:
            raise located(error, instruction, settings.filename) from None
    return tuple(stages)


def _stage(index: int, instruction: FromInstruction, body: tuple[Instruction, ...],
           earlier: Sequence[Stage], directory: StageDirectory, settings: _Settings) -> Stage:
    image = settings.lexer.expand_word(instruction.image, settings.scope)
    if not image:
        raise DockerfileError(f"base name ({instruction.image}) should not be blank")
    platform = _platform(instruction.platform, settings)
    base = directory.base(image, current=index, platform=platform)
    if isinstance(base, StageBase):
        platform = earlier[base.index].platform
    return Stage(index=index, name=instruction.stage_name, base=base, platform=platform,
                 from_instruction=instruction, instructions=body, directory=directory)


def _platform(written: str, settings: _Settings) -> Platform:
    """The platform of `FROM --platform=...`, the target platform when not given."""
    if not written:
        return settings.target_platform
    text = settings.lexer.expand_word(written, settings.scope)
    if not text:
        raise DockerfileError(f"empty platform value from expression {written}")
    try:
        return _parse_platform(text, settings.build_platform)
    except ImageError as error:
        raise DockerfileError(f"failed to parse platform {written}: {error}") from None


def _parse_platform(text: str, host: Platform) -> Platform:
    """`os/arch[/variant]`, or one word, an OS or an architecture (the host fills the rest)."""
    if "/" in text:
        return parse_platform(text)
    word = text.strip().lower()
    if word in _KNOWN_OS:
        return Platform(word, host.architecture, host.variant)
    return normalize_platform(Platform(host.os, word))


def _with_dependencies(stages: tuple[Stage, ...], triggers: Mapping[int, tuple[str, ...]],
                       filename: str) -> tuple[Stage, ...]:
    """Each stage with the stages and images it needs (its own lines and inherited triggers)."""
    result: list[Stage] = []
    for stage in stages:
        found = references(stage.instructions, stage.directory, filename=filename)
        found += references(_inherited_triggers(stage, stages, triggers, filename),
                            stage.directory, filename=filename, at=stage.from_instruction)
        indices = {ref.source.index for ref in found if isinstance(ref.source, StageBase)}
        if isinstance(stage.base, StageBase):
            indices.add(stage.base.index)
        images = tuple(dict.fromkeys(ref.source for ref in found
                                     if isinstance(ref.source, ImageBase)))
        result.append(replace(stage, dependencies=tuple(sorted(indices)), images=images))
    return tuple(result)


def _inherited_triggers(stage: Stage, stages: Sequence[Stage],
                        triggers: Mapping[int, tuple[str, ...]],
                        filename: str) -> tuple[Instruction, ...]:
    """The ONBUILD triggers that run at the start of `stage`, as far as they are known."""
    if isinstance(stage.base, StageBase):
        return tuple(line.trigger for line in stages[stage.base.index].instructions
                     if isinstance(line, OnbuildInstruction))
    if stage.index in triggers:
        return parse_triggers(triggers[stage.index], at=stage.from_instruction,
                              filename=filename)
    return ()


def _target(stages: Sequence[Stage], target: str | None) -> int:
    if target is None or target == "":
        return len(stages) - 1
    wanted = target.lower()
    for stage in stages:
        if stage.name and stage.name == wanted:
            return stage.index
    names = [stage.name for stage in stages if stage.name]
    listing = ", ".join(names) if names else "none (no stage is named)"
    raise DockerfileError(f'target stage "{target}" could not be found'
                          + did_you_mean(wanted, names) + f"; stages: {listing}")


def _assemble(plan: BuildPlan) -> BuildPlan:
    """Fill in the stages the target needs, their order and the images they use."""
    needed = _reachable(plan.all_stages, plan.target)
    stages = tuple(plan.all_stages[index] for index in needed)
    for stage in stages:
        _check_order(stage, plan.filename)
    images: dict[ImageBase, None] = {}
    for stage in stages:
        if isinstance(stage.base, ImageBase):
            images[stage.base] = None
        images.update(dict.fromkeys(stage.images))
    return replace(plan, stages=stages, order=needed, images=tuple(images))


def _reachable(stages: Sequence[Stage], target: int) -> tuple[int, ...]:
    seen = {target}
    pending = [target]
    while pending:
        for index in stages[pending.pop()].dependencies:
            if index not in seen:
                seen.add(index)
                pending.append(index)
    return tuple(sorted(seen))


def _check_order(stage: Stage, filename: str) -> None:
    """A planned stage may only use stages defined before it."""
    if not stage.dependencies or stage.dependencies[-1] < stage.index:
        return
    for ref in references(stage.instructions, stage.directory, filename=filename):
        _check_reference(ref, stage, filename, ref.instruction)
    raise located(DockerfileError("an ONBUILD trigger of the base stage uses a stage that is "
                                  "not defined before this one"),
                  stage.from_instruction, filename)


def _check_reference(ref: Reference, stage: Stage, filename: str, at: Instruction) -> None:
    try:
        check_earlier(ref.source, ref.word, current=stage.index,
                      current_name=stage.display_name, use=ref.use)
    except DockerfileError as error:
        raise located(error, at, filename) from None


def _declared(instructions: Iterable[Instruction]) -> set[str]:
    return {definition.name for instruction in instructions
            if isinstance(instruction, ArgInstruction) for definition in instruction.args}
