"""One stage's program: its instructions walked in order, with the state expansion depends on.

The walk starts from the base: the base config's Env (plus the default PATH when it has none)
and WorkingDir, or, for a stage built on another stage, that stage's final environment and
ARGs. The base image's ONBUILD triggers run first. Then, per BuildKit:
- ENV and ARG update one environment in the order written (an ENV after an ARG of the same name
  shadows it, and the reverse also holds for later steps); every value of one ENV line is
  expanded before any is set, while the names of one ARG line are set one after the other;
- an ARG takes the `--build-arg` value if given, else its default (expanded), else (no default)
  the global scope's value, else it is declared without a value;
- WORKDIR chains relative paths onto the previous one.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from core.dockerfile.instructions import (
    ArgDefinition,
    ArgInstruction,
    CopyInstruction,
    EnvInstruction,
    Instruction,
    RunInstruction,
    WorkdirInstruction,
)
from core.dockerfile.shell import Lexer
from core.errors import DockerfileError
from core.image.config import DEFAULT_PATH, ImageConfig
from core.plan.args import proxy_env
from core.plan.environment import EnvHistory, Overlay
from core.plan.expansion import Words, evolved, expand_instruction, located
from core.plan.model import ArgValue, BuildPlan, Stage, StageProgram, Step
from core.plan.onbuild import parse_triggers
from core.plan.sources import Source, Use, check_earlier

_NOTHING: Final[Mapping[str, str]] = MappingProxyType({})
_NO_NAMES: Final[frozenset[str]] = frozenset()


def expand_stage(
    stage: Stage, *, base_config: ImageConfig | None, build_args: Mapping[str, str],
    global_args: Mapping[str, str], platform_args: Mapping[str, str] = _NOTHING,
    escape: str = "\\", filename: str = "Dockerfile", parent: StageProgram | None = None,
) -> StageProgram:
    """Expand `stage`'s instructions, its base image's ONBUILD triggers first.

    `base_config` is the base image's config (None for scratch); for a stage built on another
    stage it is that stage's resulting config (its OnBuild holds that stage's own ONBUILD
    lines) and `parent` is that stage's program, whose environment and ARGs carry over.
    `global_args` and `platform_args` are the plan's; `build_args` the `--build-arg` values.
    Raises DockerfileError placed at the failing instruction (triggers: at the FROM line).
    """
    walk = _Walk(stage, lexer=Lexer(escape), filename=filename, build_args=build_args,
                 scope={**platform_args, **global_args})
    walk.start(base_config, parent)
    triggers = base_config.config.on_build if base_config is not None else ()
    for trigger in parse_triggers(triggers, at=stage.from_instruction, filename=filename):
        walk.step(trigger, onbuild=True)
    for instruction in stage.instructions:
        walk.step(instruction, onbuild=False)
    return StageProgram(stage=stage, steps=tuple(walk.steps), triggers=tuple(triggers),
                        env=walk.view(), args=tuple(walk.args.values()), workdir=walk.workdir,
                        consumed_build_args=frozenset(walk.consumed))


class _Walk:
    """The state of one stage's walk (local to one `expand_stage` call)."""

    def __init__(self, stage: Stage, *, lexer: Lexer, filename: str,
                 build_args: Mapping[str, str], scope: Mapping[str, str]) -> None:
        self.stage = stage
        self.lexer = lexer
        self.filename = filename
        self.build_args = build_args
        self.scope = scope
        self.proxies = proxy_env(build_args)
        self.env = EnvHistory()
        self.args: dict[str, ArgValue] = {}
        self.workdir = "/"
        self.consumed: set[str] = set()
        self.steps: list[Step] = []
        self._view: Mapping[str, str] | None = None
        self._run_view: Mapping[str, str] | None = None
        self._run_args_cache: tuple[ArgValue, ...] | None = None

    def start(self, base_config: ImageConfig | None, parent: StageProgram | None) -> None:
        if parent is not None:
            self.env = EnvHistory(parent.env)
            self.args = {arg.name: arg for arg in parent.args}
            self.workdir = parent.workdir
            return
        if base_config is not None:
            for entry in base_config.config.env:
                key, _, value = entry.partition("=")
                self.env[key] = value
            if base_config.config.working_dir:
                self.workdir = _workdir("/", base_config.config.working_dir)
        if "PATH" not in self.env and self.stage.platform.os != "windows":
            self.env["PATH"] = DEFAULT_PATH

    def view(self) -> Mapping[str, str]:
        """The environment now, as a read-only snapshot shared until the next change (no
        copy: a snapshot of the history, so memory stays linear in the ENV lines)."""
        if self._view is None:
            self._view = self.env.snapshot()
        return self._view

    def run_view(self) -> Mapping[str, str]:
        """What a RUN sees: the environment and the proxy build args."""
        if not self.proxies:
            return self.view()
        if self._run_view is None:
            self._run_view = Overlay(self.view(), self.proxies)
        return self._run_view

    def set(self, name: str, value: str) -> None:
        self.env[name] = value
        self._view = self._run_view = None
        if name in self.args:  # the RUN history lists an ARG with its value in the env
            self._run_args_cache = None

    def step(self, instruction: Instruction, *, onbuild: bool) -> None:
        try:
            self.steps.append(self._step(instruction, onbuild=onbuild))
        except DockerfileError as error:
            at = self.stage.from_instruction if onbuild else instruction
            raise located(error, at, self.filename) from None

    def _step(self, instruction: Instruction, *, onbuild: bool) -> Step:
        env = self.view()
        if isinstance(instruction, ArgInstruction):
            return self._arg(instruction, env, onbuild=onbuild)
        words = Words(self.lexer, env)
        expanded = expand_instruction(instruction, words)
        source: Source | None = None
        mounts: tuple[Source | None, ...] = ()
        build_args: tuple[ArgValue, ...] = ()
        if isinstance(expanded, RunInstruction):
            env, build_args = self.run_view(), self._run_args()
            mounts = self._mount_sources(expanded)
        elif isinstance(expanded, CopyInstruction) and expanded.from_:
            source = self._source(expanded.from_, "copy")
        elif isinstance(expanded, WorkdirInstruction):
            self.workdir = _workdir(self.workdir, words.word(expanded.path))
            expanded = evolved(expanded, path=self.workdir)
        elif isinstance(expanded, EnvInstruction):
            for pair in expanded.env:
                self.set(pair.key, pair.value)
        # Positional (in field order): a class called with keywords gets them as a dict.
        return Step(expanded, instruction, env, self.workdir, onbuild, _frozen(words.used),
                    _names(words.unset), source, mounts, build_args)

    def _arg(self, instruction: ArgInstruction, env: Mapping[str, str], *,
             onbuild: bool) -> Step:
        used: dict[str, str] = {}
        unset: set[str] = set()
        resolved: list[ArgDefinition] = []
        for definition in instruction.args:
            words = Words(self.lexer, self.view())
            value = self._arg_value(definition, words)
            used.update(words.used)
            unset.update(words.unset)
            self.args[definition.name] = ArgValue(definition.name, value)
            self._run_args_cache = None
            if value is not None:
                self.set(definition.name, value)
            resolved.append(ArgDefinition(definition.name, value))
        return Step(instruction=evolved(instruction, args=tuple(resolved)), written=instruction,
                    env=env, workdir=self.workdir, onbuild=onbuild, used=_frozen(used),
                    unset=_names(unset))

    def _arg_value(self, definition: ArgDefinition, words: Words) -> str | None:
        name = definition.name
        if name in self.build_args:
            self.consumed.add(name)
            return self.build_args[name]
        if definition.default is not None:
            return words.word(definition.default)
        return self.scope.get(name)

    def _source(self, word: str, use: Use) -> Source:
        source = self.stage.directory.source(word, use=use)
        check_earlier(source, word, current=self.stage.index,
                      current_name=self.stage.display_name, use=use)
        return source

    def _run_args(self) -> tuple[ArgValue, ...]:
        """The ARGs in scope as a RUN's history lists them: the value in the environment."""
        if self._run_args_cache is None:
            self._run_args_cache = tuple(_current(arg, self.view()) for arg in self.args.values())
        return self._run_args_cache

    def _mount_sources(self, run: RunInstruction) -> tuple[Source | None, ...]:
        if not run.mounts:
            return ()
        return tuple(self._source(mount.from_, "mount")
                     if mount.from_ and mount.type != "tmpfs" else None
                     for mount in run.mounts)


def _current(arg: ArgValue, env: Mapping[str, str]) -> ArgValue:
    """`arg` with the value the environment holds for it (the same object when unchanged)."""
    value = env.get(arg.name, arg.value)
    return arg if value == arg.value else ArgValue(arg.name, value)


def _frozen(values: dict[str, str]) -> Mapping[str, str]:
    return MappingProxyType(values) if values else _NOTHING


def _names(names: set[str]) -> frozenset[str]:
    return frozenset(names) if names else _NO_NAMES


def _workdir(current: str, path: str) -> str:
    """`path` made absolute against `current` and cleaned, like Go's filepath.Join + Clean."""
    if not path:
        raise DockerfileError("normalizing workdir: cannot normalize empty path")
    joined = path if path.startswith("/") else f"/{current}/{path}"
    cleaned = posixpath.normpath(joined)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def expand_planned(plan: BuildPlan, index: int, *, base_config: ImageConfig | None,
                   parent: StageProgram | None = None) -> StageProgram:
    """`expand_stage` for stage `index` of `plan`, with the plan's arguments and escape."""
    return expand_stage(plan.stage(index), base_config=base_config, build_args=plan.build_args,
                        global_args=plan.global_args, platform_args=plan.platform_args,
                        escape=plan.escape, filename=plan.filename, parent=parent)
