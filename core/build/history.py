"""History `created_by` strings, byte for byte as BuildKit's Dockerfile frontend writes them.

BuildKit formats some entries with Go's `fmt` verbs, reproduced here:
- `CMD %q` / `ENTRYPOINT %q` of a string slice: `["/bin/sh" "-c" "echo hi"]`;
- `SHELL %v`, `VOLUME %v`, `EXPOSE %v` of a slice: `[/bin/bash -c]`;
- `HEALTHCHECK %+v` of the healthcheck struct, durations in Go's `time.Duration` form.
Steps with a file-system result (RUN, COPY, ADD) get the ` # buildkit` suffix; RUN lists the
build args in scope as `|N A=a B=b` before the command (secret build args as `NAME=****`).
Every entry carries the comment `buildkit.dockerfile.v0`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from core.image.config import Healthcheck
from core.plan import ArgValue
from core.redaction import REDACTED, Redactor

HISTORY_COMMENT = "buildkit.dockerfile.v0"
BUILDKIT_SUFFIX = " # buildkit"

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\", '"': '\\"'}
_DURATION_UNITS = ((3600 * 10**9, "h"), (60 * 10**9, "m"))


def go_quote(text: str) -> str:
    """Go's `strconv.Quote`: printable characters kept, the rest escaped."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def go_quoted_list(items: Iterable[str]) -> str:
    """`fmt.Sprintf("%q", []string{...})`."""
    return "[" + " ".join(go_quote(item) for item in items) + "]"


def go_list(items: Iterable[str]) -> str:
    """`fmt.Sprintf("%v", []string{...})`."""
    return "[" + " ".join(items) + "]"


def go_duration(nanoseconds: int) -> str:
    """Go's `time.Duration.String()`: `0s`, `1.5s`, `1m30s`, `2h0m0s`, `500ms`, `10µs`."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < 10**9:
        for size, unit in ((10**6, "ms"), (10**3, "µs"), (1, "ns")):
            if value >= size:
                return sign + _decimal(value, size) + unit
    text = ""
    for size, unit in _DURATION_UNITS:
        if value >= size or text:
            text += f"{value // size}{unit}"
            value %= size
    return sign + text + _decimal(value, 10**9) + "s"


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def healthcheck_text(check: Healthcheck) -> str:
    return ("HEALTHCHECK {Test:" + go_list(check.test)
            + f" Interval:{go_duration(check.interval)}"
            + f" Timeout:{go_duration(check.timeout)}"
            + f" StartPeriod:{go_duration(check.start_period)}"
            + f" StartInterval:{go_duration(check.start_interval)}"
            + f" Retries:{check.retries}}}")


def run_text(argv: Sequence[str], build_args: Sequence[ArgValue], *,
             secret_names: Collection[str] = (), redactor: Redactor | None = None) -> str:
    """`RUN [|N K=v ...] argv... # buildkit` (args declared twice are listed once). The value
    of a secret build arg, or of an arg holding a secret value (`redactor`), is `****`."""
    values: dict[str, str] = {}
    for arg in build_args:
        value = arg.value if arg.value is not None else ""
        hidden = arg.name in secret_names or (redactor is not None and redactor.found(value))
        values[arg.name] = REDACTED if hidden else value
    prefix = [f"|{len(values)}", *(f"{k}={v}" for k, v in values.items())] if values else []
    return "RUN " + " ".join([*prefix, *argv]) + BUILDKIT_SUFFIX


def copy_text(keyword: str, *, sources: Sequence[str], heredocs: Sequence[str], dest: str,
              chown: str = "", chmod: str = "", parents: bool = False) -> str:
    """`COPY [--parents] [--chown=..] [--chmod=..] src... <<NAME... dest # buildkit`."""
    words = [keyword]
    if parents:
        words.append("--parents")
    if chown:
        words.append(f"--chown={chown}")
    if chmod:
        words.append(f"--chmod={chmod}")
    words.extend(sources)
    words.extend(f"<<{name}" for name in heredocs)
    words.append(dest)
    return " ".join(words) + BUILDKIT_SUFFIX
