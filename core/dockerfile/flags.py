"""Instruction flags (`--name`, `--name=value`) and their values, Go durations included.

Each instruction declares the flags it accepts and their kind; `parse_flags` checks the flags
written on a line against that declaration the way BuildKit's frontend does: unknown and
repeated flags, missing values and non-boolean values for boolean flags are errors. `Flags`
then reads values as strings, booleans, repeated lists, HEALTHCHECK durations and retries.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from core.dockerfile.records import fast_init
from core.errors import DockerfileError

FlagKind = Literal["bool", "string", "strings"]
FlagSpec = Mapping[str, FlagKind]

_MIN_INTERVAL_NS: Final = 1_000_000  # 1ms
_INT32_MAX: Final = (1 << 31) - 1


@fast_init
@dataclass(frozen=True)
class Flags:
    """The flags given on one line, checked against the instruction's declaration."""

    values: Mapping[str, str] = field(default_factory=dict)  # bool and string flags
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # repeatable flags

    def string(self, name: str, default: str = "") -> str:
        """The value of a string flag, `default` when it was not given."""
        return self.values.get(name, default)

    def boolean(self, name: str) -> bool:
        """A boolean flag: False when not given, True for `--name` or `--name=true`."""
        return self.values.get(name) == "true"

    def optional_boolean(self, name: str) -> bool | None:
        """A boolean flag, None when it was not given."""
        value = self.values.get(name)
        return None if value is None else value == "true"

    def strings(self, name: str) -> tuple[str, ...]:
        """Every value of a repeatable flag, in order."""
        return self.lists.get(name, ())

    def interval(self, name: str) -> int:
        """A duration flag in nanoseconds: 0 when not given or zero, else at least 1ms."""
        text = self.string(name)
        if not text:
            return 0
        try:
            value = parse_go_duration(text)
        except DockerfileError as error:
            raise DockerfileError(f"invalid value for --{name}: {error.message}") from None
        if value != 0 and value < _MIN_INTERVAL_NS:
            raise DockerfileError(f'Interval "{name}" cannot be less than 1ms')
        return value

    def int32(self, name: str) -> int:
        """A non-negative 32-bit integer flag, 0 when not given."""
        text = self.string(name)
        if not text:
            return 0
        digits = text[1:] if text[:1] in ("+", "-") else text
        value = int(text) if digits.isascii() and digits.isdigit() else None
        if value is None or not -_INT32_MAX - 1 <= value <= _INT32_MAX:
            raise DockerfileError(f'invalid value for --{name}: "{text}"')
        if value < 0:
            raise DockerfileError(f"--{name} cannot be negative ({value})")
        return value


#: the flags of a line that has none (shared: `Flags` is read-only)
NO_FLAGS: Final = Flags(values=MappingProxyType({}), lists=MappingProxyType({}))


def parse_flags(written: tuple[str, ...], spec: FlagSpec) -> Flags:
    """Check `written` ("--name" / "--name=value" strings) against `spec`."""
    if not written:
        return NO_FLAGS
    values: dict[str, str] = {}
    lists: dict[str, tuple[str, ...]] = {}
    for text in written:
        if text == "--":  # end of options
            break
        if not text.startswith("--"):
            raise DockerfileError(f"arg should start with -- : {text}")
        flag, has_value, value = text.partition("=")
        name = flag[2:]
        kind = spec.get(name)
        if kind is None:
            suggestion = did_you_mean(name, sorted(spec), prefix="--")
            raise DockerfileError(f"unknown flag: {flag}{suggestion}")
        if kind == "strings":
            if not has_value:
                raise DockerfileError(f"missing a value on flag: {flag}")
            lists[name] = (*lists.get(name, ()), value)
            continue
        if name in values:
            raise DockerfileError(f"duplicate flag specified: {flag}")
        values[name] = _flag_value(kind, flag, value, has_value=bool(has_value))
    return Flags(values, lists)


def did_you_mean(word: str, choices: Iterable[str], *, prefix: str = "") -> str:
    """A ` (did you mean <prefix>x?)` suffix when one choice is close to `word`, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _flag_value(kind: FlagKind, flag: str, value: str, *, has_value: bool) -> str:
    if kind == "string":
        if not has_value:
            raise DockerfileError(f"missing a value on flag: {flag}")
        return value
    if has_value and not value:
        raise DockerfileError(f"missing a value on flag: {flag}")
    lowered = value.lower()
    if lowered in ("", "true"):
        return "true"
    if lowered == "false":
        return "false"
    raise DockerfileError(f"expecting boolean value for flag {flag}, not: {value}")


_DURATION_UNITS: Final[Mapping[str, int]] = MappingProxyType({
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
})
_DURATION_PART: Final = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")
_MAX_DURATION: Final = (1 << 63) - 1


def parse_go_duration(text: str) -> int:
    """Parse a Go duration (`1m30s`, `500ms`, `-2h`, `0`) into nanoseconds."""
    body = text[1:] if text[:1] in ("+", "-") else text
    sign = -1 if text.startswith("-") else 1
    if body == "0":
        return 0
    if not body:
        raise DockerfileError(f'invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None or not (match.group(1) or match.group(2)):
            reason = "missing unit in" if match is None and body[pos:].isdigit() else "invalid"
            raise DockerfileError(f'{reason} duration "{text}"')
        whole, fraction, unit = match.groups()
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            raise DockerfileError(f'unknown unit "{unit}" in duration "{text}"')
        total += int(whole or "0") * scale + _fraction(fraction or "", scale)
        pos = match.end()
    if total > _MAX_DURATION:
        raise DockerfileError(f'invalid duration "{text}"')
    return sign * total


def _fraction(digits: str, scale: int) -> int:
    if not digits:
        return 0
    divisor: int = 10 ** len(digits)
    return int(digits) * scale // divisor
