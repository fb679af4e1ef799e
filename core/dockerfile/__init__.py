"""The Dockerfile front end: parser, parse-tree dumps, typed instructions, word expansion."""

from core.dockerfile.ast import Directive, Heredoc, Node, ParseResult
from core.dockerfile.dump import dump_buildkit, dump_json
from core.dockerfile.parser import parse_dockerfile

__all__ = [
    "Directive",
    "Heredoc",
    "Node",
    "ParseResult",
    "dump_buildkit",
    "dump_json",
    "parse_dockerfile",
]
