"""The values the planner produces: stages and their bases, the build plan, expanded programs.

Everything here is a frozen dataclass. A `BuildPlan` says which stages to build and in what
order; a `StageProgram` is one stage's instructions with variables expanded, the base image's
ONBUILD triggers inserted, and the environment each step sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from core.dockerfile.instructions import FromInstruction, Instruction
from core.dockerfile.records import fast_init
from core.image.manifest import Platform
from core.plan.sources import Base, ImageBase, Source, StageDirectory


def _no_values() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Stage:
    """One `FROM` and the instructions up to the next one (typed, not expanded).

    `name` is lower-cased, "" for an unnamed stage. `platform` is the platform the stage builds
    for: its `FROM --platform`, the base stage's platform, or the target platform.
    `dependencies` are the stages it needs (base, `--from`, mount `from`, and the base stage's
    ONBUILD triggers), ascending; `images` the images it copies or mounts from. `directory`
    resolves `--from` words met later (the ONBUILD triggers of a base image).
    """

    index: int
    name: str
    base: Base
    platform: Platform
    from_instruction: FromInstruction
    instructions: tuple[Instruction, ...]
    directory: StageDirectory = field(repr=False, compare=False)
    dependencies: tuple[int, ...] = ()
    images: tuple[ImageBase, ...] = ()

    @property
    def display_name(self) -> str:
        """The name, or `stage-N` as BuildKit shows unnamed stages."""
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class BuildPlan:
    """The stages to build for one target.

    `stages` holds only the stages the target needs, by index; `order` is the order to build
    them (every stage after the stages it depends on, the target last). `all_stages` keeps every
    stage of the Dockerfile (pruned ones included) for re-planning once base images' ONBUILD
    triggers are known. `images` are the external images needed: FROM bases and `--from`
    images, each once, in first-use order. `global_args` is what FROM lines see: the automatic
    platform args and the global ARGs, with `--build-arg` overrides; `platform_args` only the
    former.
    """

    stages: tuple[Stage, ...]
    order: tuple[int, ...]
    target: int
    images: tuple[ImageBase, ...]
    warnings: tuple[str, ...]
    all_stages: tuple[Stage, ...]
    global_args: Mapping[str, str] = field(default_factory=_no_values)
    platform_args: Mapping[str, str] = field(default_factory=_no_values)
    build_args: Mapping[str, str] = field(default_factory=_no_values)
    escape: str = "\\"
    filename: str = "Dockerfile"

    def stage(self, index: int) -> Stage:
        """The stage with this index (planned or not)."""
        return self.all_stages[index]

    @property
    def target_stage(self) -> Stage:
        return self.all_stages[self.target]


@fast_init
@dataclass(frozen=True)
class ArgValue:
    """An ARG in scope: its name and value (None when declared without any value)."""

    name: str
    value: str | None


@fast_init
@dataclass(frozen=True)
class Step:
    """One instruction ready to execute.

    `instruction` is the expanded typed instruction (BuildKit's expansion rules: RUN, CMD,
    ENTRYPOINT, SHELL and HEALTHCHECK keep their text; WORKDIR holds the resolved absolute path;
    ARG holds the resolved values); `written` is the instruction as written. `env` is the
    environment the step sees: ENV values and ARGs in scope (for RUN also the proxy build args
    nobody declared). `used` are the variables the expansion read, with their values, and
    `unset` the ones it referenced that had no value. `workdir` is the working directory the
    step runs in (for WORKDIR, the new one). `source` is the resolved `COPY --from`;
    `mount_sources` the resolved `from` of each RUN mount (None for the build context).
    `build_args` are the ARGs in scope for RUN, as BuildKit lists them in the history entry.
    """

    instruction: Instruction
    written: Instruction
    env: Mapping[str, str]
    workdir: str
    onbuild: bool = False
    used: Mapping[str, str] = field(default_factory=_no_values)
    unset: frozenset[str] = frozenset()
    source: Source | None = None
    mount_sources: tuple[Source | None, ...] = ()
    build_args: tuple[ArgValue, ...] = ()


@dataclass(frozen=True)
class StageProgram:
    """A stage's steps, expanded, with its base image's ONBUILD triggers first.

    `triggers` are the trigger expressions that ran (the stage's image config must not keep
    them). `env`, `args` and `workdir` are the state at the end of the stage, inherited by a
    stage that uses this one as its base. `consumed_build_args` are the `--build-arg` names an
    ARG of this stage took its value from.
    """

    stage: Stage
    steps: tuple[Step, ...]
    triggers: tuple[str, ...]
    env: Mapping[str, str]
    args: tuple[ArgValue, ...]
    workdir: str
    consumed_build_args: frozenset[str] = frozenset()
