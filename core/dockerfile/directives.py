"""Parser directives: `# syntax=`, `# escape=` and `# check=` at the top of a Dockerfile.

Directives are only recognised in the leading run of lines that all look like directives: the
first line that is blank, an instruction, an ordinary comment or an unknown `# name=value` ends
the search (later look-alikes are plain comments). Names are case-insensitive, each may appear
once, and `escape` accepts only a backslash or a backtick.
"""

from __future__ import annotations

import re
from typing import Final

from core.dockerfile.ast import Directive
from core.dockerfile.lines import go_trim_left, trim_newline
from core.errors import DockerfileError

DIRECTIVE_NAMES: Final = frozenset({"syntax", "escape", "check"})
ESCAPE_TOKENS: Final = ("\\", "`")
_NAME: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9]*")
_REGEX_SPACE: Final = "\t\n\f\r "  # what `\s` means in Go's regexp


def match_directive(line: str) -> tuple[str, str] | None:
    """Split `#name=value` (blanks allowed around `=`) into its name and value.

    `line` has its leading blanks removed already. The value is trimmed of blanks; a value made
    only of blanks keeps its last character, as BuildKit's lazy regular expression does.
    """
    if not line.startswith("#"):
        return None
    body = go_trim_left(line[1:])
    name = _NAME.match(body)
    if name is None:
        return None
    after = body[name.end():].lstrip(_REGEX_SPACE)
    if not after.startswith("="):
        return None
    rest = after[1:]
    value = rest.lstrip(_REGEX_SPACE)
    if value:
        return name.group(), value.rstrip(_REGEX_SPACE)
    if rest:
        return name.group(), rest[-1]
    return None


def scan_directives(
    lines: tuple[str, ...], *, filename: str = "Dockerfile",
) -> tuple[tuple[Directive, ...], str]:
    """The directives at the top of `lines` and the escape character in force after them."""
    found: list[Directive] = []
    escape = "\\"
    for index, raw in enumerate(lines):
        text = go_trim_left(trim_newline(raw))
        match = match_directive(text)
        if match is None or match[0].lower() not in DIRECTIVE_NAMES:
            break
        name, value = match[0].lower(), match[1]
        problem = _problem(name, value, found)
        if problem is not None:
            raise DockerfileError(problem, file=filename, line=index + 1,
                                  column=len(raw) - len(go_trim_left(raw)) + 1,
                                  source_line=trim_newline(raw))
        if name == "escape":
            escape = value
        found.append(Directive(name=name, value=value, line=index + 1))
    return tuple(found), escape


def _problem(name: str, value: str, seen: list[Directive]) -> str | None:
    if any(directive.name == name for directive in seen):
        return f"only one {name} parser directive can be used"
    if name == "escape" and value not in ESCAPE_TOKENS:
        return f"invalid escape token '{value}' does not match ` or \\"
    return None
