"""Dumps of a parse tree: BuildKit's s-expression format and a JSON document."""

from __future__ import annotations

import json
import re
from types import MappingProxyType
from typing import Final

from core.dockerfile.ast import Heredoc, Node, ParseResult

_PLAIN: Final = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII except `"` and `\`
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_NAMED: Final = MappingProxyType({
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    '"': '\\"', "\\": "\\\\",
})


def go_quote(text: str) -> str:
    """`text` as Go's strconv.Quote writes it.

    Lone surrogates U+DC80..U+DCFF stand for undecodable bytes (see core.dockerfile.lines) and
    come out as `\\xNN`, as Go shows invalid UTF-8.
    """
    if _PLAIN.fullmatch(text):
        return f'"{text}"'
    return '"' + "".join(_quote_char(ch) for ch in text) + '"'


def _quote_char(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        raw = ch.encode("utf-8", "surrogateescape" if code >= 0xDC80 else "surrogatepass")
        return "".join(f"\\x{byte:02x}" for byte in raw)
    if ch.isprintable():
        return ch
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def dump_node(node: Node) -> str:
    """One instruction without the surrounding parentheses: `run "echo hi"`."""
    parts = [node.instruction.lower()]
    if node.flags:
        parts.append("[" + " ".join(go_quote(flag) for flag in node.flags) + "]")
    if node.child is not None:
        parts.append("(" + dump_node(node.child) + ")")
    parts.extend(go_quote(arg) for arg in node.args)
    return " ".join(parts)


def dump_buildkit(result: ParseResult) -> str:
    """The parse tree as BuildKit's `Node.Dump()` prints it, one `(instruction)` per line."""
    return "".join(f"({dump_node(node)})\n" for node in result.nodes)


def dump_json(result: ParseResult) -> str:
    """The parse tree as a JSON document (lines, heredocs, directives, warnings), newline-ended.

    Undecodable bytes (lone surrogates) are written as `\\udcNN` escapes.
    """
    document = {
        "filename": result.filename,
        "escape": result.escape,
        "directives": [
            {"name": d.name, "value": d.value, "line": d.line} for d in result.directives
        ],
        "warnings": list(result.warnings),
        "nodes": [_node_json(node) for node in result.nodes],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def _node_json(node: Node) -> dict[str, object]:
    return {
        "instruction": node.instruction,
        "flags": list(node.flags),
        "args": list(node.args),
        "json": node.json,
        "original": node.original,
        "start_line": node.start_line,
        "end_line": node.end_line,
        "heredocs": [_heredoc_json(doc) for doc in node.heredocs],
        "child": _node_json(node.child) if node.child is not None else None,
    }


def _heredoc_json(doc: Heredoc) -> dict[str, object]:
    return {
        "name": doc.name,
        "content": doc.content,
        "expand": doc.expand,
        "chomp": doc.chomp,
        "file_descriptor": doc.file_descriptor,
    }
