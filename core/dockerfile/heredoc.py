"""Here-documents: finding `<<EOF` markers on an instruction line and reading their bodies.

BuildKit splits the joined instruction line into shell words (quotes and escapes kept, unset
variables left as written, backslash as the escape whatever `# escape=` says) and treats each
word of the form `[digits]<<[-]DELIMITER` as a here-document. The delimiter is the word with
its quotes removed; any quoting disables expansion of the body. Bodies follow the instruction
line, one after another, each ended by a line equal to its delimiter (after leading tabs are
removed for `<<-`). A line that fails to split into words has no here-documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from core.dockerfile.ast import Heredoc
from core.dockerfile.lines import GO_SPACE, GO_SPACE_RUN, GO_SPACE_SET, SourceLines
from core.errors import DockerfileError

HEREDOC_INSTRUCTIONS: Final = frozenset({"run", "copy", "add"})
_MARKER: Final = re.compile(r"([0-9]*)<<(-?)([^<]*)", re.DOTALL)
_PLAIN: Final = re.compile(r"[^'\"$\\]*")  # nothing the lexer treats specially
# Closed quotes and no `$` or `\`: the lexer keeps such text as it is; words split on blanks.
_QUOTED: Final = re.compile(r"""(?:[^'"$\\]|'[^']*'|"[^"$\\]*")*""")
_QUOTED_WORD: Final = re.compile(
    f"""(?:[^{re.escape(GO_SPACE)}'"$\\\\]|'[^']*'|"[^"$\\\\]*")+""")
_QUOTE_PAIR: Final = re.compile("'([^']*)'|\"([^\"]*)\"")
_SPECIAL_PARAMS: Final = frozenset("@*#?-$!0")
_MAX_FD: Final = 2**64 - 1  # Go's ParseUint saturates


class _LexError(Exception):
    """The line is not valid shell word syntax."""


@dataclass(frozen=True)
class HeredocMarker:
    """A `<<NAME` found on an instruction line, before its body is read."""

    name: str
    expand: bool
    chomp: bool
    file_descriptor: int


def find_markers(line: str) -> tuple[HeredocMarker, ...]:
    """The here-document markers of an instruction line, in order."""
    if "<<" not in line:
        return ()
    words = line_words(line)
    if words is None:
        return ()
    markers = (_marker(word) for word in words)
    return tuple(marker for marker in markers if marker is not None)


def line_words(line: str) -> list[str] | None:
    """The shell words of `line`, quotes and escapes kept; None if it does not lex."""
    if _PLAIN.fullmatch(line):
        return [word for word in GO_SPACE_RUN.split(line) if word]
    if _QUOTED.fullmatch(line):
        return _QUOTED_WORD.findall(line)
    return split_words(line, raw_quotes=True, raw_escapes=True)


def _marker(word: str) -> HeredocMarker | None:
    match = _MARKER.fullmatch(word) if "<<" in word else None
    if match is None or not match.group(3):
        return None
    digits, dash, rest = match.groups()
    delimiter = delimiter_name(rest)
    if delimiter is None:
        return None
    return HeredocMarker(delimiter[0], delimiter[1], dash == "-", _file_descriptor(digits))


def delimiter_name(rest: str) -> tuple[str, bool] | None:
    """The delimiter written after `<<[-]` with its quotes removed, and whether the body
    expands (no quoting); None when `rest` is not one word."""
    if _PLAIN.fullmatch(rest) and GO_SPACE_RUN.search(rest) is None:
        return rest, True
    if _QUOTED_WORD.fullmatch(rest):  # one word: the lexer only drops the quote characters
        name = _QUOTE_PAIR.sub(_inside_quotes, rest)
        return (name, _quote_count(name) == _quote_count(rest)) if name else None
    return lexed_delimiter_name(rest)


def _inside_quotes(match: re.Match[str]) -> str:
    single, double = match.groups()
    return single if single is not None else double


def lexed_delimiter_name(rest: str) -> tuple[str, bool] | None:
    """`delimiter_name` with the lexer (the reference its shortcuts are tested against)."""
    cooked = split_words(rest, raw_quotes=False, raw_escapes=False)
    if cooked is None:
        raise DockerfileError(f"failed to process heredoc delimiter {rest!r}")
    if len(cooked) != 1:
        return None
    quoted = split_words(rest, raw_quotes=True, raw_escapes=False)
    if quoted is None or len(quoted) != 1:
        raise DockerfileError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    return cooked[0], _quote_count(cooked[0]) == _quote_count(quoted[0])


def _file_descriptor(digits: str) -> int:
    """The number before `<<`; 0 when absent, saturated like Go's ParseUint when huge."""
    significant = digits.lstrip("0")
    if len(significant) > 20:
        return _MAX_FD
    return min(int(significant or "0"), _MAX_FD)


def _quote_count(word: str) -> int:
    return word.count("'") + word.count('"')


def read_bodies(
    markers: tuple[HeredocMarker, ...], source: SourceLines, pos: int,
) -> tuple[tuple[Heredoc, ...], int]:
    """Read the bodies starting at 0-based line `pos`; returns them and the next line index.

    Raises DockerfileError("unterminated heredoc") when the file ends first.
    """
    docs: list[Heredoc] = []
    lines = source.lines
    for marker in markers:
        start = pos
        while True:
            if pos >= len(lines):
                raise DockerfileError("unterminated heredoc", end_line=len(lines))
            candidate = lines[pos].rstrip("\r")
            pos += 1
            if (candidate.lstrip("\t") if marker.chomp else candidate) == marker.name:
                break
        # A line of the body is never the file's last (the terminator follows): it ends in "\n".
        body = lines[start:pos - 1]
        if marker.chomp:
            body = tuple(line.lstrip("\t") for line in body)
        content = "\n".join(body) + "\n" if body else ""
        docs.append(Heredoc(marker.name, content, marker.expand, marker.chomp,
                            marker.file_descriptor))
    return tuple(docs), pos


def split_words(text: str, *, raw_quotes: bool, raw_escapes: bool) -> list[str] | None:
    """Shell words of `text` as BuildKit's lexer makes them with no variables set, or None."""
    lexer = _Lexer(text, raw_quotes=raw_quotes)
    try:
        _, words = lexer.until("", raw_escapes=raw_escapes)
    except (_LexError, RecursionError):
        return None
    return words


class _Words:
    """Accumulates words: unquoted blanks separate them, quoted text never does."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word: list[str] = []
        self.size = 0
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch not in GO_SPACE_SET:
            self.add_raw(ch)
        elif self.in_word and self.size:
            self.words.append("".join(self.word))
            self.word, self.size, self.in_word = [], 0, False

    def add_text(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        self.word.append(text)
        self.size += len(text)
        self.in_word = True

    def result(self) -> list[str]:
        return [*self.words, "".join(self.word)] if self.size else self.words


class _Lexer:
    """The subset of BuildKit's shell lexer that word splitting needs (no variables are set)."""

    def __init__(self, text: str, *, raw_quotes: bool) -> None:
        self.text = text
        self.pos = 0
        self.raw_quotes = raw_quotes
        self.raw_escapes = False

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def until(self, stop: str, *, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to the unquoted `stop` character ("" = end of text)."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._until(stop)
        finally:
            self.raw_escapes = saved

    def _until(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self.peek()) != "":
            if stop and ch == stop:
                self.pos += 1
                return "".join(result), words.result()
            if ch in "'\"":
                piece = self.single_quoted() if ch == "'" else self.double_quoted()
                result.append(piece)
                words.add_raw(piece)
                continue
            if ch == "$":
                piece = self.dollar()
                result.append(piece)
                words.add_text(piece)
                continue
            self.pos += 1
            if ch == "\\":
                if self.raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self.next()
                if not ch:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quoted(self) -> str:
        self.pos += 1
        end = self.text.find("'", self.pos)
        if end < 0:
            raise _LexError("unexpected end of statement while looking for matching single-quote")
        body, self.pos = self.text[self.pos:end], end + 1
        return f"'{body}'" if self.raw_quotes else body

    def double_quoted(self) -> str:
        self.pos += 1
        result: list[str] = ['"'] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if not ch:
                raise _LexError("unexpected end of statement while looking for matching "
                                "double-quote")
            if ch == '"':
                self.pos += 1
                return "".join([*result, '"'] if self.raw_quotes else result)
            if ch == "$":
                result.append(self.dollar())
                continue
            self.pos += 1
            if ch == "\\":
                if self.raw_escapes:
                    result.append(ch)
                if not self.peek():
                    continue
                if self.peek() in '"$\\':
                    ch = self.next()
            result.append(ch)

    def dollar(self) -> str:
        self.pos += 1
        if self.peek() != "{":
            name = self.name()
            return "$" + name
        self.pos += 1
        if self.peek() in ("", "{", "}", ":"):
            raise _LexError("syntax error: bad substitution or missing '}'")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return "${" + name + "}"
        if ch == "/":
            return self.replacement(name)
        modifier = ch
        if ch == ":":
            ch = self.next()
            modifier += ch
            if ch in ("#", "%"):
                raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        elif ch not in ("+", "-", "?", "#", "%"):
            raise _LexError(f"unsupported modifier ({modifier}) in substitution")
        word, _ = self.until("}", raw_escapes=ch in ("#", "%"))
        return "${" + name + modifier + word + "}"

    def replacement(self, name: str) -> str:
        if self.peek() == "/":
            self.pos += 1
        pattern, _ = self.until("/", raw_escapes=True)
        replacement, _ = self.until("}", raw_escapes=True)
        return "${" + name + "/" + pattern + "/" + replacement + "}"

    def name(self) -> str:
        start = self.pos
        text = self.text
        if self.peek().isdecimal():
            while self.peek().isdecimal():
                self.pos += 1
            return text[start:self.pos]
        if self.peek() in _SPECIAL_PARAMS:
            self.pos += 1
            return text[start:self.pos]
        while (ch := self.peek()) and (ch.isalpha() or ch.isdecimal() or ch == "_"):
            self.pos += 1
        return text[start:self.pos]
