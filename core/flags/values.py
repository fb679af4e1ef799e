"""Value syntaxes of kaniko's executor flags: Go booleans and durations, sizes, `k=v` pairs,
build args and BuildKit-style secrets. Pure functions; every bad value is a `UsageError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from core.build.options import SecretSource
from core.errors import UsageError

#: Go's strconv.ParseBool spellings
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})

#: seconds per Go duration unit
_DURATION_UNITS = MappingProxyType({
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
})
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")

#: binary multipliers for sizes (`2G` is 2 GiB, like Docker's memory flags)
_SIZE_UNITS = MappingProxyType({"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40})
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:ib|i|b)?|b)?", re.IGNORECASE)

#: kaniko's (logrus') verbosity names -> logging levels; `trace` is below DEBUG
TRACE = 5
VERBOSITY_LEVELS = MappingProxyType({
    "panic": logging.CRITICAL, "fatal": logging.CRITICAL, "error": logging.ERROR,
    "warn": logging.WARNING, "warning": logging.WARNING, "info": logging.INFO,
    "debug": logging.DEBUG, "trace": TRACE,
})

_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_bool(text: str) -> bool:
    """A Go-style boolean: `true`/`false`, `1`/`0`, `t`/`f` (as strconv.ParseBool)."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r} (use true or false)")


def parse_duration(text: str, *, flag: str) -> float:
    """Seconds in a Go duration such as `336h`, `1h30m`, `90s` or `1.5h`; must be positive."""
    value = text.strip()
    if value == "0":
        raise UsageError(f"{flag}: the duration must be positive, got {text!r}")
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(value):
        raise UsageError(f"{flag}: invalid duration {text!r} "
                         "(Go syntax: a number and a unit, e.g. 90s, 30m, 336h, 1h30m)")
    if total <= 0:
        raise UsageError(f"{flag}: the duration must be positive, got {text!r}")
    return total


def parse_size(text: str, *, flag: str) -> int:
    """Bytes in a size such as `2G`, `512M`, `1.5GiB` or `1048576` (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"{flag}: invalid size {text!r} (e.g. 2G, 512M, 1048576)")
    unit = match.group(2)
    size = int(float(match.group(1)) * (_SIZE_UNITS[unit.lower()] if unit else 1))
    if size <= 0:
        raise UsageError(f"{flag}: the size must be positive, got {text!r}")
    return size


def parse_verbosity(text: str) -> int:
    """A logging level for kaniko's `--verbosity` names."""
    level = VERBOSITY_LEVELS.get(text.strip().lower())
    if level is None:
        names = "|".join(name for name in VERBOSITY_LEVELS if name != "warning")
        raise UsageError(f"--verbosity: invalid level {text!r} (choose {names})")
    return level


def split_pair(text: str, *, flag: str) -> tuple[str, str]:
    """`KEY=VALUE` (the value may be empty and may contain `=`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"{flag}: expected KEY=VALUE, got {key!r}"
                         f"{'=...' if sep else ''}")
    return key.strip(), value


def parse_labels(items: Iterable[str]) -> dict[str, str]:
    """`--label k=v`, repeated; a later label of the same key wins."""
    return dict(split_pair(item, flag="--label") for item in items)


def parse_build_args(items: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """`--build-arg NAME=value`, or `NAME` alone for the value of that environment variable.

    A bare `NAME` that is not set in the environment is skipped (the Dockerfile's default
    applies). A later value for the same name wins.
    """
    args: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not _ARG_NAME.fullmatch(name):
            raise UsageError(f"--build-arg: invalid argument name in {item!r} "
                             "(expected NAME=value or NAME)")
        if sep:
            args[name] = value
        elif name in environ:
            args[name] = environ[name]
    return args


def parse_secret_build_args(items: Iterable[str], build_args: Mapping[str, str],
                            environ: Mapping[str, str]) -> tuple[dict[str, str], frozenset[str]]:
    """`--secret-build-arg NAME=value` or `NAME`: (all build args, the secret names).

    `NAME=value` sets the value (over a `--build-arg` of that name); `NAME` alone keeps the
    `--build-arg NAME` value, else takes the environment variable NAME (unset: skipped, the
    Dockerfile's default applies). Error messages never show a value.
    """
    args = dict(build_args)
    names: set[str] = set()
    for item in items:
        name, sep, value = item.partition("=")
        if not _ARG_NAME.fullmatch(name):
            raise UsageError("--secret-build-arg: invalid argument name "
                             f"{name[:40]!r} (expected NAME=value or NAME)")
        names.add(name)
        if sep:
            args[name] = value
        elif name not in args and name in environ:
            args[name] = environ[name]
    return args, frozenset(names)


def parse_secret(text: str, *, environ: Mapping[str, str], cwd: Path) -> SecretSource:
    """`--secret id=ID,src=FILE`, `id=ID,env=VAR` or `id=ID,type=env|file,src=...`.

    With neither `src` nor `env`, the environment variable named like the id is used.
    """
    fields = _secret_fields(text)
    secret_id = fields.pop("id", "")
    kind = fields.pop("type", "")
    source = fields.pop("src", None) or fields.pop("source", None)
    env = fields.pop("env", None)
    if not secret_id or fields or kind not in ("", "file", "env") or (source and env):
        raise UsageError(f"--secret: invalid value {text!r} "
                         "(expected id=ID,src=FILE or id=ID,env=VAR)")
    if kind == "env" or env is not None:
        return SecretSource(secret_id, env=env or source or secret_id)
    if source is None:
        if kind == "file" or secret_id not in environ:
            raise UsageError(f"--secret {secret_id}: give src=FILE or env=VAR")
        return SecretSource(secret_id, env=secret_id)
    path = cwd / Path(source).expanduser()
    if not path.is_file():
        raise UsageError(f"--secret {secret_id}: {source} is not a readable file")
    return SecretSource(secret_id, path=path)


def _secret_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key in fields:
            raise UsageError(f"--secret: invalid value {text!r} "
                             "(expected comma-separated KEY=VALUE fields, e.g. id=npm,src=.npmrc)")
        fields[key] = value.strip()
    return fields
