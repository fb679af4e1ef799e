"""Physical lines of a Dockerfile: decoding, Go's notion of white space, comments, continuations.

Text is decoded from UTF-8 with ``surrogateescape``: bytes that are not valid UTF-8 become the
lone surrogates U+DC80..U+DCFF and encode back to the same bytes with the same error handler, so
argument strings and here-document bodies stay byte-exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: Go's `unicode.IsSpace` (BuildKit trims and splits with it in many places)
GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
GO_SPACE_SET: Final = frozenset(GO_SPACE)
GO_SPACE_RUN: Final = re.compile(f"[{re.escape(GO_SPACE)}]+")
_BOM: Final = b"\xef\xbb\xbf"


def decode_source(data: bytes | str) -> str:
    """The Dockerfile as text, a leading UTF-8 byte-order mark removed."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = data.encode("utf-8", "surrogatepass")
    else:
        raw = data
    return raw.removeprefix(_BOM).decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class SourceLines:
    """The file split at "\\n" only, as BuildKit's scanner does; lines exclude the "\\n"."""

    lines: tuple[str, ...]
    final_newline: bool  # whether the last line ended with "\n"

    @classmethod
    def from_text(cls, text: str) -> SourceLines:
        parts = text.split("\n")
        if parts[-1] == "":
            parts.pop()
        return cls(tuple(parts), text.endswith("\n"))

    def raw(self, index: int) -> str:
        """Line `index` (0-based) with its line ending, as it appears in the file."""
        line = self.lines[index]
        if index + 1 < len(self.lines) or self.final_newline:
            return line + "\n"
        return line

    def shown(self, line: int) -> str | None:
        """The text of 1-based `line` for error messages, or None past the end."""
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1].rstrip("\r")
        return None


def trim_newline(line: str) -> str:
    """Drop a line's trailing carriage returns (the "\\n" is already gone)."""
    return line.rstrip("\r")


def go_trim_left(text: str) -> str:
    return text.lstrip(GO_SPACE)


def go_trim(text: str) -> str:
    return text.strip(GO_SPACE)


def trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    """Remove a trailing escape character (plus blanks); True when the line continues.

    As in BuildKit, an escape character preceded by another escape character is not a
    continuation (so a value may end in an escaped backslash).
    """
    body = line.rstrip(" \t")
    if body.endswith(escape) and (len(body) == 1 or body[-2] != escape):
        return body[:-1], True
    return line, False
