"""The character-by-character expansion of one word: BuildKit's shell lexer, option by option.

`core.dockerfile.shell.Lexer` runs a `Machine` for the words its shortcuts do not cover, and
its `lex_word_with_matches` always does (the reference the shortcuts are tested against).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from core.dockerfile import shellpattern
from core.errors import DockerfileError

if TYPE_CHECKING:
    from core.dockerfile.shell import Lexer

#: deepest `${...${...}...}` nesting accepted
MAX_NESTING: Final = 64
#: white space as Go's unicode.IsSpace sees it (BuildKit splits words with it), for a [] class
SPACE: Final = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE_RUN: Final = re.compile(f"[{SPACE}]+")
_SPACE_CHAR: Final = re.compile(f"[{SPACE}]")
_SPECIAL_PARAMS: Final = "@*#?-$!0"


class Output:
    """Collects the expanded text and, when asked, the words it splits into."""

    __slots__ = ("limit", "parts", "size", "track", "word", "word_size", "words")

    def __init__(self, *, limit: int, words: bool) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.track = words
        self.words: list[str] = []
        self.word: list[str] = []
        self.word_size = 0

    def _append(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > self.limit:
            raise DockerfileError(f"expansion result is longer than {self.limit} characters")

    def raw(self, text: str) -> None:
        """Text that stays in the current word whatever it holds (quoted, escaped, plain)."""
        self._append(text)
        if self.track:
            self.word.append(text)
            self.word_size += len(text)

    def space(self, char: str) -> None:
        """An unquoted white-space character: ends the current word."""
        self._append(char)
        if self.track:
            self._end_word()

    def substituted(self, text: str) -> None:
        """A variable's value: its white space splits words."""
        self._append(text)
        if self.track:
            for index, piece in enumerate(SPACE_RUN.split(text)):
                if index:
                    self._end_word()
                if piece:
                    self.word.append(piece)
                    self.word_size += len(piece)

    def _end_word(self) -> None:
        if self.word_size:
            self.words.append("".join(self.word))
        self.word.clear()
        self.word_size = 0

    def text(self) -> str:
        return "".join(self.parts)

    def finish_words(self) -> list[str]:
        self._end_word()
        return self.words


class Machine:
    """The state of one expansion: a cursor over the word and the names looked up."""

    def __init__(self, lexer: Lexer, text: str, env: Mapping[str, str]) -> None:
        self.lexer = lexer
        self.text = text
        # Go's text/scanner, which BuildKit reads the word with, drops a leading BOM.
        self.pos = 1 if text.startswith("\ufeff") else 0
        self.env = env
        self.used: set[str] = set()
        self.unset: set[str] = set()
        self.depth = 0

    def peek(self) -> str:
        """The next character, or "" at the end."""
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        char = self.peek()
        self.pos += len(char)
        return char

    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        (self.unset if value is None else self.used).add(name)
        return value

    def until(self, stop: str, *, raw_escapes: bool, words: bool = False) -> Output:
        """Expand up to the unescaped, unquoted `stop` character ("" = the end of the word)."""
        out = Output(limit=self.lexer.max_length, words=words)
        quotes = not self.lexer.skip_process_quotes
        while char := self.peek():
            if char == stop:
                self.pos += 1
                return out
            if char == "$":
                out.substituted(self.dollar())
            elif char == "'" and quotes:
                out.raw(self.single_quoted())
            elif char == '"' and quotes:
                out.raw(self.double_quoted(raw_escapes=raw_escapes))
            elif char == self.lexer.escape:
                if not self.escaped(out, raw_escapes=raw_escapes):
                    break
            else:
                self.plain(out)
        if stop:
            raise DockerfileError(
                f"unexpected end of statement while looking for matching {stop}")
        return out

    def escaped(self, out: Output, *, raw_escapes: bool) -> bool:
        """An escape outside quotes: the next character is taken literally. False at the end."""
        escape = self.next()
        if raw_escapes:
            out.raw(escape)
        char = self.next()
        if char:
            out.raw(char)
        return bool(char)

    def plain(self, out: Output) -> None:
        """A white-space character, or a run of characters with no meaning here."""
        char = self.text[self.pos]
        if _SPACE_CHAR.match(char):
            self.pos += 1
            out.space(char)
            return
        special = self.lexer._special.search(self.text, self.pos + 1)
        end = special.start() if special else len(self.text)
        out.raw(self.text[self.pos:end])
        self.pos = end

    def single_quoted(self) -> str:
        """'...': everything literal up to the next single quote."""
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            self.pos = len(self.text)
            raise DockerfileError(
                "unexpected end of statement while looking for matching single-quote")
        body = self.text[self.pos:end + 1] if self.lexer.raw_quotes else self.text[self.pos + 1:end]
        self.pos = end + 1
        return body

    def double_quoted(self, *, raw_escapes: bool) -> str:
        """"...": `$` expands; the escape character escapes only `"`, `$` and itself."""
        escape = self.lexer.escape
        out = Output(limit=self.lexer.max_length, words=False)
        quote = self.next()
        if self.lexer.raw_quotes:
            out.raw(quote)
        while (char := self.peek()) != '"':
            if not char:
                raise DockerfileError(
                    "unexpected end of statement while looking for matching double-quote")
            if char == "$":
                out.raw(self.dollar())
            elif char == escape:
                self.pos += 1
                if raw_escapes:
                    out.raw(escape)
                following = self.peek()
                if following in ('"', "$", escape):
                    self.pos += 1
                    out.raw(following)
                elif following:
                    out.raw(escape)
            else:
                special = self.lexer._dq_special.search(self.text, self.pos)
                end = special.start() if special else len(self.text)
                out.raw(self.text[self.pos:end])
                self.pos = end
        self.pos += 1
        if self.lexer.raw_quotes:
            out.raw(quote)
        return out.text()

    def name(self) -> str:
        """A variable name: letters, digits and `_`; or a run of digits; or one special param."""
        start = self.pos
        char = self.peek()
        if char.isdecimal():
            while self.peek().isdecimal():
                self.pos += 1
        elif char and char in _SPECIAL_PARAMS:
            self.pos += 1
        else:
            while (char := self.peek()) and (char.isalpha() or char.isdecimal() or char == "_"):
                self.pos += 1
        return self.text[start:self.pos]

    def dollar(self) -> str:
        """`$name` or `${...}`, with the cursor on the `$`."""
        self.pos += 1
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.lexer.skip_unset_env else ""
            return value
        self.pos += 1
        char = self.peek()
        if not char:
            raise DockerfileError("syntax error: missing '}'")
        if char in "{}:":
            raise DockerfileError("syntax error: bad substitution")
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise DockerfileError("syntax error: substitutions nested too deeply")
        try:
            return self.braced(self.name())
        finally:
            self.depth -= 1

    def braced(self, name: str) -> str:
        """The rest of `${name...}` after the name."""
        char = self.next()
        if char == "}":
            value = self.lookup(name)
            if value is None:
                return "${" + name + "}" if self.lexer.skip_unset_env else ""
            return value
        if char == "/":
            return self.replaced(name)
        if char == ":":
            # `${V:x...}`: the character after the colon is the operator, whatever it is.
            operator = self.next()
            return self.modified(name, ":" + operator, operator, null_is_unset=True)
        if char and char in "+-?#%":
            return self.modified(name, char, char, null_is_unset=False)
        if not char:
            raise DockerfileError("syntax error: missing '}'")
        raise DockerfileError(f"unsupported modifier ({char}) in substitution")

    def operand(self, stop: str, *, raw_escapes: bool, missing: str) -> str:
        """The word inside `${...}` up to `stop`; `missing` replaces any error at the end."""
        try:
            return self.until(stop, raw_escapes=raw_escapes).text()
        except DockerfileError:
            if not self.peek():
                raise DockerfileError(missing) from None
            raise

    def modified(self, name: str, spelled: str, operator: str, *, null_is_unset: bool) -> str:
        """`${name<op>word}` for the operators - + ? # % (with or without a colon)."""
        word = self.operand("}", raw_escapes=operator in ("#", "%"),
                            missing="syntax error: missing '}'")
        value = self.lookup(name)
        if value is None and self.lexer.skip_unset_env:
            return "${" + name + spelled + word + "}"
        empty = value is None or (null_is_unset and value == "")
        if operator == "-":
            return word if empty else (value or "")
        if operator == "+":
            return "" if empty else word
        if operator == "?":
            if empty:
                default = "is not allowed to be unset" if value is None else \
                    "is not allowed to be empty"
                raise DockerfileError(f"{name}: {word or default}")
            return value or ""
        if operator in ("#", "%"):
            return _trim(operator, word, value or "")
        raise DockerfileError(f"unsupported modifier ({spelled}) in substitution")

    def replaced(self, name: str) -> str:
        """`${name/pattern/replacement}` and `${name//pattern/replacement}`."""
        every = self.peek() == "/"
        self.pos += every
        pattern = self.operand("/", raw_escapes=True, missing="syntax error: missing '/' in ${}")
        replacement = self.operand("}", raw_escapes=True, missing="syntax error: missing '}'")
        value = self.lookup(name)
        if value is None and self.lexer.skip_unset_env:
            slashes = "//" if every else "/"
            return "${" + name + slashes + pattern + "/" + replacement + "}"
        if every:
            return shellpattern.replace_all(pattern, value or "", replacement,
                                            max_length=self.lexer.max_length)
        return shellpattern.replace_first(pattern, value or "", replacement)


def _trim(operator: str, word: str, value: str) -> str:
    """`#`/`%` remove the shortest matching prefix/suffix, `##`/`%%` the longest."""
    longest = word.startswith(operator)
    pattern = word[1:] if longest else word
    if operator == "#":
        return shellpattern.trim_prefix(pattern, value, longest=longest)
    return shellpattern.trim_suffix(pattern, value, longest=longest)
