"""The parse tree of a Dockerfile: what the parser produces, before any typing or expansion."""

from __future__ import annotations

from dataclasses import dataclass

from core.dockerfile.records import fast_init


@fast_init
@dataclass(frozen=True)
class Heredoc:
    """One here-document attached to an instruction (`<<EOF` ... `EOF`)."""

    name: str  # the delimiter word, quotes removed
    content: str  # body, byte-exact (tabs already stripped for `<<-`), ends with "\n" if non-empty
    expand: bool  # False when the delimiter was quoted: no variable expansion of the body
    chomp: bool  # True for `<<-`: leading tabs were stripped
    file_descriptor: int = 0  # `3<<EOF` gives 3; 0 when none was written


@fast_init
@dataclass(frozen=True)
class Node:
    """One instruction.

    `args` are the arguments as the parser leaves them, before variable expansion:
    JSON-form arguments are the decoded strings; a shell-form RUN/CMD/ENTRYPOINT is one string;
    ENV and LABEL are (key, value, separator) triples flattened; HEALTHCHECK is ("CMD", ...) or
    ("NONE",). ONBUILD keeps its trigger in `child`.
    """

    instruction: str  # lower-case keyword: "from", "run", ...
    args: tuple[str, ...]
    flags: tuple[str, ...]  # "--name" or "--name=value", in order, before the arguments
    json: bool  # exec form (a JSON array was given)
    original: str  # the instruction's text, continuation lines joined
    start_line: int  # 1-based, the keyword's line
    end_line: int  # 1-based, the last line (heredoc bodies included)
    heredocs: tuple[Heredoc, ...] = ()
    child: Node | None = None
    comments: tuple[str, ...] = ()  # comment lines directly above, without the "#"


@dataclass(frozen=True)
class Directive:
    """A parser directive such as `# syntax=...` or `# escape=`."""

    name: str  # lower-case
    value: str
    line: int


@dataclass(frozen=True)
class ParseResult:
    """A parsed Dockerfile."""

    nodes: tuple[Node, ...]
    directives: tuple[Directive, ...]
    escape: str  # "\\" or "`"
    warnings: tuple[str, ...] = ()
    filename: str = "Dockerfile"
