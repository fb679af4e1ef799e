"""Variable expansion of one instruction's arguments, with BuildKit's choice of what to expand.

Expanded: ENV and LABEL keys and values, COPY/ADD sources, destination, `--chown`, `--chmod`
and ADD's `--checksum`, the bodies of COPY/ADD here-documents whose delimiter was not quoted
(with a lexer that keeps quotes and always uses `\\` as escape), RUN `--mount` values, VOLUME
paths, USER, STOPSIGNAL, WORKDIR, and EXPOSE (split into words). Not expanded: RUN, CMD,
ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD, `COPY --from`, `--exclude`, and RUN
here-documents (the shell expands those). ARG defaults and WORKDIR are resolved by the stage
walker, which keeps the state they depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast

from core.dockerfile.ast import Heredoc
from core.dockerfile.instructions import (
    AddInstruction,
    CopyInstruction,
    EnvInstruction,
    ExposeInstruction,
    InstructionBase,
    KeyValue,
    LabelInstruction,
    RunInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
)
from core.dockerfile.mounts import parse_mount
from core.dockerfile.shell import Lexer
from core.errors import DockerfileError

_I = TypeVar("_I", bound=InstructionBase)
_T = TypeVar("_T")
_RAW_LEXER: Final = Lexer("\\", skip_process_quotes=True)


def evolved(instance: _T, **changes: Any) -> _T:
    """`dataclasses.replace` for frozen dataclasses without `__post_init__`, several times faster.

    The clone shares the unchanged field values; classes with `__slots__` take the slow path.
    """
    if not hasattr(instance, "__dict__"):
        return replace(instance, **changes)  # type: ignore[type-var]
    clone: _T = object.__new__(type(instance))
    clone.__dict__.update(instance.__dict__)
    clone.__dict__.update(changes)
    return clone


def located(error: DockerfileError, instruction: InstructionBase,
            filename: str) -> DockerfileError:
    """`error` placed at `instruction`: its file, lines and first source line."""
    span = instruction.span
    first = instruction.original.split("\n", 1)[0]
    return error.with_location(file=filename, line=span.start_line, end_line=span.end_line,
                               source_line=first)


class Words:
    """Expands the words of one instruction against one environment, noting what it read."""

    __slots__ = ("_env", "_lexer", "unset", "used")

    def __init__(self, lexer: Lexer, env: Mapping[str, str]) -> None:
        self._lexer = lexer
        self._env = env
        self.used: dict[str, str] = {}
        self.unset: set[str] = set()

    def word(self, text: str) -> str:
        """One word in, one string out (text without syntax as it is, whatever its length)."""
        if not self._lexer.has_syntax(text):
            return text
        return self._lexer.expand_word_noting(text, self._env, self.used, self.unset)

    def split(self, text: str) -> tuple[str, ...]:
        """Expand, then split on unquoted white space."""
        expansion = self._lexer.expand_word_with_matches(text, self._env)
        for name in expansion.used:
            self.used[name] = self._env[name]
        self.unset.update(expansion.unset)
        return expansion.words

    def body(self, text: str) -> str:
        """A here-document body: quotes are plain characters, `\\` escapes."""
        if "$" not in text and "\\" not in text:
            return text
        return _RAW_LEXER.expand_word_noting(text, self._env, self.used, self.unset)

    def has_syntax(self, text: str) -> bool:
        """Whether expanding `text` could change it (a `$`, quote, escape or leading BOM)."""
        return self._lexer.has_syntax(text)


def expand_instruction(instruction: _I, words: Words) -> _I:
    """The instruction with the arguments BuildKit expands replaced by their expansion.

    Types with nothing to expand come back unchanged (the same object), as does an
    instruction whose words hold no variable, quote or escape.
    """
    expander = _EXPANDERS.get(type(instruction))
    if expander is None:
        return instruction
    return cast(_I, expander(instruction, words))


def _key_values(pairs: tuple[KeyValue, ...], words: Words) -> tuple[KeyValue, ...] | None:
    """The pairs expanded, or None when nothing changed."""
    changed = False
    out: list[KeyValue] = []
    for pair in pairs:
        key, value = words.word(pair.key), words.word(pair.value)
        if key != pair.key or value != pair.value:
            changed = True
            pair = KeyValue(key, value, pair.legacy)
        out.append(pair)
    return tuple(out) if changed else None


def _env(instruction: EnvInstruction, words: Words) -> EnvInstruction:
    pairs = _key_values(instruction.env, words)
    return instruction if pairs is None else evolved(instruction, env=pairs)


def _label(instruction: LabelInstruction, words: Words) -> LabelInstruction:
    pairs = _key_values(instruction.labels, words)
    return instruction if pairs is None else evolved(instruction, labels=pairs)


def _each(values: tuple[str, ...], words: Words) -> tuple[str, ...]:
    return tuple([words.word(value) for value in values])


def _bodies(heredocs: tuple[Heredoc, ...], words: Words) -> tuple[Heredoc, ...]:
    return tuple(evolved(doc, content=words.body(doc.content)) if doc.expand else doc
                 for doc in heredocs)


def _copy(instruction: CopyInstruction, words: Words) -> CopyInstruction:
    changes = _copy_changes(instruction, words)
    return evolved(instruction, **changes) if changes else instruction


def _add(instruction: AddInstruction, words: Words) -> AddInstruction:
    changes = _copy_changes(instruction, words)
    checksum = words.word(instruction.checksum)
    if checksum != instruction.checksum:
        changes["checksum"] = checksum
    return evolved(instruction, **changes) if changes else instruction


def _copy_changes(instruction: CopyInstruction | AddInstruction,
                  words: Words) -> dict[str, Any]:
    """The fields of a COPY or ADD that expansion changes, with their new values."""
    changes: dict[str, Any] = {}
    sources = _each(instruction.sources, words)
    if sources != instruction.sources:
        changes["sources"] = sources
    for name in ("dest", "chown", "chmod"):
        value: str = getattr(instruction, name)
        expanded = words.word(value)
        if expanded != value:
            changes[name] = expanded
    if any(doc.expand for doc in instruction.inline_sources):
        changes["inline_sources"] = _bodies(instruction.inline_sources, words)
    return changes


def _run(instruction: RunInstruction, words: Words) -> RunInstruction:
    if not any(words.has_syntax(mount.spec) for mount in instruction.mounts):
        return instruction
    mounts = tuple([parse_mount(mount.spec, expand=words.word) for mount in instruction.mounts])
    return evolved(instruction, mounts=mounts)


def _volume(instruction: VolumeInstruction, words: Words) -> VolumeInstruction:
    volumes = _each(instruction.volumes, words)
    if not all(volumes):
        raise DockerfileError("VOLUME specified can not be an empty string")
    return instruction if volumes == instruction.volumes else evolved(instruction,
                                                                      volumes=volumes)


def _user(instruction: UserInstruction, words: Words) -> UserInstruction:
    user = words.word(instruction.user)
    return instruction if user == instruction.user else evolved(instruction, user=user)


def _stopsignal(instruction: StopsignalInstruction, words: Words) -> StopsignalInstruction:
    signal = words.word(instruction.signal)
    return instruction if signal == instruction.signal else evolved(instruction, signal=signal)


def _expose(instruction: ExposeInstruction, words: Words) -> ExposeInstruction:
    ports = tuple([port for word in instruction.ports for port in words.split(word)])
    return instruction if ports == instruction.ports else evolved(instruction, ports=ports)


_EXPANDERS: Final[Mapping[type, Callable[..., InstructionBase]]] = MappingProxyType({
    EnvInstruction: _env, LabelInstruction: _label, CopyInstruction: _copy,
    AddInstruction: _add, RunInstruction: _run, VolumeInstruction: _volume,
    UserInstruction: _user, StopsignalInstruction: _stopsignal, ExposeInstruction: _expose,
})
