"""The Dockerfile parser: bytes or text in, a ParseResult out, as BuildKit's parser reads it.

The pipeline per instruction: physical lines are joined into one logical line (comments and
blank lines inside a continuation are skipped), the keyword and flags are split off, the
keyword's line parser shapes the arguments (see core.dockerfile.arguments), and RUN/COPY/ADD
read their here-document bodies from the lines that follow.

Beyond BuildKit's parser, which leaves these to a later stage, this parser already rejects
unknown instructions, forbidden ONBUILD triggers and a SHELL not written as a JSON array, so
every problem it reports carries the instruction's line. Only DockerfileError comes out.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Final, NamedTuple

from core.dockerfile import arguments as shapes
from core.dockerfile.arguments import Shape, split_command
from core.dockerfile.ast import Heredoc, Node, ParseResult
from core.dockerfile.directives import scan_directives
from core.dockerfile.heredoc import HEREDOC_INSTRUCTIONS, find_markers, read_bodies
from core.dockerfile.lines import (
    GO_SPACE,
    SourceLines,
    decode_source,
    go_trim,
    go_trim_left,
    trim_continuation,
)
from core.errors import DockerfileError

LineParser = Callable[[str, str], Shape]  # (arguments, escape character) -> shape

_LINE_PARSERS: Final[MappingProxyType[str, LineParser]] = MappingProxyType({
    "add": lambda rest, _: shapes.parse_maybe_json_list(rest),
    "arg": shapes.parse_name_or_name_val,
    "cmd": lambda rest, _: shapes.parse_maybe_json(rest),
    "copy": lambda rest, _: shapes.parse_maybe_json_list(rest),
    "entrypoint": lambda rest, _: shapes.parse_maybe_json(rest),
    "env": lambda rest, escape: shapes.parse_name_val(rest, "ENV", escape),
    "expose": lambda rest, _: shapes.parse_whitespace_delimited(rest),
    "from": lambda rest, _: shapes.parse_whitespace_delimited(rest),
    "healthcheck": lambda rest, _: shapes.parse_health(rest),
    "label": lambda rest, escape: shapes.parse_name_val(rest, "LABEL", escape),
    "maintainer": lambda rest, _: shapes.parse_string(rest),
    "onbuild": lambda rest, _: Shape(()),  # the trigger becomes Node.child
    "run": lambda rest, _: shapes.parse_maybe_json(rest),
    "shell": lambda rest, _: shapes.parse_maybe_json(rest),
    "stopsignal": lambda rest, _: shapes.parse_string(rest),
    "user": lambda rest, _: shapes.parse_string(rest),
    "volume": lambda rest, _: shapes.parse_maybe_json_list(rest),
    "workdir": lambda rest, _: shapes.parse_string(rest),
})
INSTRUCTIONS: Final = frozenset(_LINE_PARSERS)
_EMPTY_CONTINUATION: Final = ("Empty continuation line found in: {line} (empty continuation "
                              "lines will become errors in a future release)")


class _Logical(NamedTuple):
    """One instruction's physical lines joined (comment and blank lines inside left out)."""

    text: str
    start: int  # 1-based line of the keyword
    next: int  # 0-based index of the line after it (= its 1-based last line)
    empty_continuation: bool = False


def parse_dockerfile(data: bytes | str, *, filename: str = "Dockerfile") -> ParseResult:
    """Parse a Dockerfile; raises DockerfileError (with file, line and source line) if invalid."""
    source = SourceLines.from_text(decode_source(data))
    directives, escape = scan_directives(source.lines, filename=filename)
    nodes, warnings = _parse_nodes(source, escape, filename, len(directives))
    return ParseResult(nodes=nodes, directives=directives, escape=escape,
                       warnings=warnings, filename=filename)


def _parse_nodes(
    source: SourceLines, escape: str, filename: str, directive_lines: int,
) -> tuple[tuple[Node, ...], tuple[str, ...]]:
    """The instructions after the `directive_lines` leading directives, and the warnings."""
    nodes: list[Node] = []
    warnings: list[str] = []
    comments: list[str] = []
    lines = source.lines
    pos = 0
    while pos < len(lines):
        first = lines[pos].rstrip("\r").lstrip(GO_SPACE)
        if not first or first[0] == "#":
            if first and pos >= directive_lines:
                _note_comment(first, comments)
            pos += 1
            continue
        logical = _join_lines(first, lines, pos, escape)
        pos = logical.next
        try:
            node, pos = _instruction(logical, source, escape, tuple(comments))
        except DockerfileError as err:
            raise _locate(err, filename, logical, source) from None
        if logical.empty_continuation:
            message = _EMPTY_CONTINUATION.format(line=logical.text)
            warnings.append(f"{filename}:{logical.start}: {message}")
        nodes.append(node)
        comments.clear()
    if not nodes:
        raise DockerfileError("file with no instructions", file=filename,
                              line=max(len(lines), 1))
    return tuple(nodes), tuple(warnings)


def _note_comment(comment: str, comments: list[str]) -> None:
    """Keep the comment block above the next instruction; a bare `#` starts a new block."""
    text = go_trim(comment[1:])
    if text:
        comments.append(text)
    else:
        comments.clear()


def _join_lines(first: str, lines: tuple[str, ...], pos: int, escape: str) -> _Logical:
    """The logical line starting at 0-based `pos`, whose text is `first` once trimmed."""
    text, more = trim_continuation(first, escape)
    if not more:
        return _Logical(first, pos + 1, pos + 1)
    start = pos + 1
    pos += 1
    parts = [text]
    empty = False
    while more and pos < len(lines):
        line = lines[pos].rstrip("\r")
        pos += 1
        trimmed = go_trim_left(line)
        if trimmed.startswith("#"):
            continue
        if not trimmed:
            empty = True
            continue
        text, more = trim_continuation(line, escape)
        parts.append(text)
    return _Logical("".join(parts), start, pos, empty)


#: an instruction line taken apart: keyword (lower-cased), flags, arguments as written, shape
_Parts = tuple[str, tuple[str, ...], str, Shape]


def _instruction(
    logical: _Logical, source: SourceLines, escape: str, comments: tuple[str, ...],
) -> tuple[Node, int]:
    """The node for one logical line, with its here-documents; returns the next line index."""
    line = logical.text
    parts = _line_parts(line, escape)
    trigger = _trigger(parts[2], escape) if parts[0] == "onbuild" else None
    instruction, _, _, shape = trigger if trigger is not None else parts
    heredocs: tuple[Heredoc, ...] = ()
    end = logical.next
    if instruction in HEREDOC_INSTRUCTIONS and not shape.json:
        markers = find_markers(line)
        if markers:
            heredocs, end = read_bodies(markers, source, logical.next)
    child = None if trigger is None else _node(trigger, parts[2], logical.start, end,
                                                heredocs, None, ())
    return _node(parts, line, logical.start, end, heredocs, child, comments), end


def _node(parts: _Parts, line: str, start: int, end: int, heredocs: tuple[Heredoc, ...],
          child: Node | None, comments: tuple[str, ...]) -> Node:
    instruction, flags, _, shape = parts
    # Positional: a class called with keywords gets them as a dict, noticeably slower.
    return Node(instruction, shape.args, flags, shape.json, line, start, end, heredocs, child,
                comments)


def _line_parts(line: str, escape: str) -> _Parts:
    """One instruction line parsed (the trigger of an ONBUILD and here-documents left out)."""
    keyword, flags, rest = split_command(line)
    instruction = keyword.lower()
    parse = _LINE_PARSERS.get(instruction)
    if parse is None:
        raise DockerfileError(unknown_instruction_message(keyword))
    shape = parse(rest, escape)
    if instruction == "shell":
        _check_shell(shape)
    return instruction, flags, rest, shape


def _trigger(rest: str, escape: str) -> _Parts | None:
    """The instruction ONBUILD registers (checked before parsing it, to refuse chains early)."""
    if not rest:
        return None
    keyword = split_command(rest)[0].upper()
    if keyword == "ONBUILD":
        raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if keyword in ("FROM", "MAINTAINER"):
        raise DockerfileError(f"{keyword} isn't allowed as an ONBUILD trigger")
    return _line_parts(rest, escape)


def _check_shell(shape: Shape) -> None:
    if not shape.json:
        raise DockerfileError("SHELL requires the arguments to be in JSON form")
    if not shape.args:
        raise DockerfileError("SHELL requires at least one argument")


def unknown_instruction_message(keyword: str) -> str:
    """`unknown instruction: COPPY (did you mean COPY?)`."""
    if not keyword:
        return "unknown instruction: a line continuation with no instruction after it"
    match = _closest_instruction(keyword.lower())
    hint = f" (did you mean {match.upper()}?)" if match is not None else ""
    return f"unknown instruction: {keyword}{hint}"


def _closest_instruction(word: str) -> str | None:
    """The nearest instruction name within BuildKit's edit-distance limit (2, or 3 if long)."""
    limit = 3 if len(word) > 10 else 2
    best = None
    for name in sorted(INSTRUCTIONS):
        if abs(len(name) - len(word)) >= limit:
            continue
        distance = _edit_distance(word, name)
        if distance < limit:
            best, limit = name, distance
    return best


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _locate(
    err: DockerfileError, filename: str, logical: _Logical, source: SourceLines,
) -> DockerfileError:
    first = source.lines[logical.start - 1]
    column = err.column or len(first) - len(go_trim_left(first)) + 1
    return DockerfileError(err.message, file=filename, line=logical.start, column=column,
                           end_line=max(err.end_line, logical.next),
                           source_line=source.shown(logical.start))
