"""Where a stage starts from and where it copies from: scratch, an image, or an earlier stage.

`FROM name` refers to a stage only if a stage with that name (case-insensitive) comes earlier;
otherwise the word is an image reference. `COPY --from=` takes a stage name, a stage index or an
image reference, and `RUN --mount=from=` a stage name or an image reference. Unlike FROM, a
`--from` word naming a stage defined later is an error (BuildKit: the stage must be defined
before the one copying from it), reported when the copying stage is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from core.dockerfile.instructions import (
    CopyInstruction,
    Instruction,
    InstructionBase,
    RunInstruction,
)
from core.dockerfile.shell import Lexer
from core.errors import DockerfileError, ImageError
from core.image.manifest import Platform
from core.image.reference import parse_reference
from core.plan.expansion import located

SCRATCH: Final = "scratch"
_INDEX: Final = re.compile(r"[+-]?[0-9]+")
_FROM_VARIABLE: Final = ("variable expansion is not supported for --from, define a new stage "
                         "with FROM using ARG from global scope as a workaround")

Use = Literal["copy", "mount"]


@dataclass(frozen=True)
class ScratchBase:
    """`FROM scratch`: an empty root filesystem."""


@dataclass(frozen=True)
class ImageBase:
    """An image from a registry: the reference as written after expansion, and its platform."""

    ref: str
    platform: Platform


@dataclass(frozen=True)
class StageBase:
    """A stage of the same Dockerfile, by index."""

    index: int


Base: TypeAlias = ScratchBase | ImageBase | StageBase
"""What a stage starts from."""

Source: TypeAlias = ScratchBase | ImageBase | StageBase
"""Where `COPY --from=` or `RUN --mount=from=` takes files from."""


@dataclass(frozen=True)
class StageDirectory:
    """The stage names of one Dockerfile, to resolve FROM and `--from` words.

    `names` maps each lower-cased stage name to its index; `count` is the number of stages;
    images named by `--from` are fetched for `target_platform`, as BuildKit does.
    """

    names: Mapping[str, int]
    count: int
    target_platform: Platform
    escape: str = "\\"

    def base(self, image: str, *, current: int, platform: Platform) -> Base:
        """The base of stage `current` from its expanded FROM word (earlier names only)."""
        index = self.names.get(image.lower())
        if index is not None and index < current:
            return StageBase(index)
        if image == SCRATCH:
            return ScratchBase()
        return ImageBase(checked_reference(image), platform)

    def source(self, word: str, *, use: Use) -> Source:
        """The stage or image a `--from` word names (possibly a later stage, see `check`)."""
        if use == "copy":
            if _has_syntax(word, self.escape) and Lexer(self.escape).expand_word(word, {}) != word:
                raise DockerfileError(_FROM_VARIABLE)
            if _INDEX.fullmatch(word):
                return self._by_index(int(word))
        index = self.names.get(word.lower())
        if index is not None:
            return StageBase(index)
        if word == SCRATCH:
            return ScratchBase()
        return ImageBase(checked_reference(word), self.target_platform)

    def _by_index(self, index: int) -> StageBase:
        if not 0 <= index < self.count:
            raise DockerfileError(f"invalid stage index {index}")
        return StageBase(index)


def _has_syntax(word: str, escape: str) -> bool:
    return "$" in word or "'" in word or '"' in word or escape in word


def check_earlier(source: Source, word: str, *, current: int, current_name: str,
                  use: Use) -> None:
    """Refuse a `--from` that names the current stage or a later one."""
    if isinstance(source, StageBase) and source.index >= current:
        verb = "copy" if use == "copy" else "mount"
        raise DockerfileError(f'cannot {verb} from stage "{word}", it needs to be defined '
                              f'before current stage "{current_name}"')


def checked_reference(text: str) -> str:
    """`text` if it parses as an image reference; DockerfileError otherwise."""
    try:
        parse_reference(text)
    except ImageError as error:
        raise DockerfileError(f'failed to parse stage name "{text}": {error}') from None
    return text


@dataclass(frozen=True)
class Reference:
    """One `--from` word of an instruction and what it names."""

    instruction: Instruction
    word: str
    use: Use
    source: Source


def references(instructions: Iterable[Instruction], directory: StageDirectory, *,
               filename: str, at: InstructionBase | None = None) -> tuple[Reference, ...]:
    """The `COPY --from` and `RUN --mount=from=` references of `instructions`, in order.

    An error is placed at its instruction, or at `at` when given (triggers report at FROM).
    """
    found: list[Reference] = []
    for instruction in instructions:
        try:
            found.extend(_instruction_references(instruction, directory))
        except DockerfileError as error:
            raise located(error, at or instruction, filename) from None
    return tuple(found)


def _instruction_references(instruction: Instruction,
                            directory: StageDirectory) -> list[Reference]:
    if isinstance(instruction, CopyInstruction) and instruction.from_:
        word = instruction.from_
        return [Reference(instruction, word, "copy", directory.source(word, use="copy"))]
    if isinstance(instruction, RunInstruction):
        return [Reference(instruction, mount.from_, "mount",
                          directory.source(mount.from_, use="mount"))
                for mount in instruction.mounts if mount.from_ and mount.type != "tmpfs"]
    return []
