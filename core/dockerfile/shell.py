"""Word expansion of Dockerfile arguments, with the rules of BuildKit's shell lexer.

`Lexer.expand_word` turns one argument into one string, `expand_words` splits the result into
words on unquoted white space (as `EXPOSE` needs), `expand_word_with_matches` also reports which
variables were found and which were referenced but unset (build-arg warnings, cache keys).

Supported: `$V`, `${V}`, `${V-w}` `${V:-w}`, `${V+w}` `${V:+w}`, `${V?msg}` `${V:?msg}`,
`${V#p}` `${V##p}` `${V%p}` `${V%%p}`, `${V/p/r}` `${V//p/r}`; single quotes (literal), double
quotes (only `$` and escapes of `"`, `$` and the escape character are special), the escape
character (`\\` or `` ` ``) outside quotes; positional and special parameters (`$1`, `$@`, ...)
are names that are never set. Expansion is a single pass: substituted values are not scanned
again, so output grows at most linearly; a length cap and a nesting cap bound the rest.
Any failure is a `DockerfileError` whose message reads like BuildKit's; callers add the line.

Shortcuts skip the character-by-character lexer (`core.dockerfile.shellmachine`) for the
common words, with the same results (property-tested against `Lexer.lex_word_with_matches`):
text with no `$`, quote or escape character comes back as it is, and ASCII text with no
escape character or single quote, whose double quotes pair up and whose every `$` starts
`$NAME`, `${NAME}` or `${NAME<op>word}` (op one of `-`, `:-`, `+`, `:+`, the word plain) is
expanded by splitting it at those references with one regular expression.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Final

from core.dockerfile.records import fast_init
from core.dockerfile.shellmachine import MAX_NESTING, SPACE, SPACE_RUN, Machine
from core.errors import DockerfileError

__all__ = ["DEFAULT_MAX_LENGTH", "EXPANDED_INSTRUCTIONS", "MAX_NESTING", "Expansion", "Lexer"]

#: Instructions (lower case, as in the parse tree) whose arguments BuildKit expands. FROM sees
#: only the global ARGs; ONBUILD's trigger is expanded when it runs in the child build. RUN,
#: CMD, ENTRYPOINT, SHELL and HEALTHCHECK are left to the shell, except that BuildKit also
#: expands `RUN --mount=...` values, `COPY`/`ADD --chown`, `ADD --checksum`, and the bodies of
#: COPY/ADD heredocs with an unquoted delimiter (with `skip_process_quotes=True`).
EXPANDED_INSTRUCTIONS: frozenset[str] = frozenset({
    "add", "arg", "copy", "env", "expose", "from", "label", "onbuild", "stopsignal", "user",
    "volume", "workdir",
})

#: default cap on the length of one expansion result, in characters
DEFAULT_MAX_LENGTH = 8 * 1024 * 1024
_GO_ESCAPES = MappingProxyType({
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "\\": "\\\\", '"': '\\"',
})
_NAME: Final = r"[A-Za-z_][A-Za-z0-9_]*"


@fast_init
@dataclass(frozen=True)
class Expansion:
    """The result of expanding one word."""

    value: str  # the word after expansion, quotes and escapes removed
    words: tuple[str, ...]  # `value` split on unquoted, unescaped white space; empty words dropped
    used: frozenset[str]  # referenced variables that were set
    unset: frozenset[str]  # referenced variables that were not set


@functools.lru_cache(maxsize=8)
def _reference_pattern(escape: str, *, quotes: bool) -> re.Pattern[str]:
    """One shortcut reference: `$NAME`, `${NAME}` or `${NAME<op>word}`, op one of `-`, `:-`,
    `+`, `:+`, the word without `$`, `}`, the escape character or (when processed) quotes.

    Groups: the bare name, the braced name, the operator, the word.
    """
    operand = "[^$}" + re.escape(escape) + ("'\"" if quotes else "") + "]*"
    return re.compile(rf"\$(?:({_NAME})|\{{({_NAME})(?:(:?[-+])({operand}))?\}})")


@dataclass(frozen=True)
class Lexer:
    """Expands words; `escape` is the Dockerfile's escape character (`\\` or `` ` ``).

    The options mirror BuildKit's: `raw_quotes` keeps the quote characters, `raw_escapes`
    keeps escape characters, `skip_process_quotes` treats quotes as ordinary characters (heredoc
    bodies), `skip_unset_env` leaves references to unset variables as they were written.
    """

    escape: str = "\\"
    _: KW_ONLY
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_process_quotes: bool = False
    skip_unset_env: bool = False
    max_length: int = DEFAULT_MAX_LENGTH
    _special: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _dq_special: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _reference: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.escape not in ("\\", "`"):
            raise DockerfileError(f"invalid escape token {self.escape!r}: must be ` or \\")
        if self.max_length < 1:
            raise DockerfileError("max_length must be positive")
        escape = re.escape(self.escape)
        object.__setattr__(self, "_special", re.compile(f"[$'\"}}/{escape}{SPACE}]"))
        object.__setattr__(self, "_dq_special", re.compile(f'["${escape}]'))
        simple = not self.raw_quotes and not self.skip_unset_env
        object.__setattr__(self, "_reference", _reference_pattern(
            self.escape, quotes=not self.skip_process_quotes) if simple else None)

    def expand_word(self, word: str, env: Mapping[str, str]) -> str:
        """One word in, one string out (BuildKit's ProcessWord)."""
        value = self._shortcut_value(word, env, {}, set())
        return value if value is not None else self._expand(word, env, words=False).value

    def expand_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand, then split on unquoted white space (BuildKit's ProcessWords; EXPOSE)."""
        return list(self.expand_word_with_matches(word, env).words)

    def expand_word_with_matches(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Expand and report the variables used and the unset ones referenced."""
        if self.skip_process_quotes or '"' not in word:  # then every blank splits words
            used: dict[str, str] = {}
            unset: set[str] = set()
            value = self._shortcut_value(word, env, used, unset)
            if value is not None:
                words = tuple([piece for piece in SPACE_RUN.split(value) if piece])
                return Expansion(value, words, frozenset(used), frozenset(unset))
        return self._expand(word, env, words=True)

    def expand_word_noting(self, word: str, env: Mapping[str, str], used: dict[str, str],
                           unset: set[str]) -> str:
        """`expand_word`, adding the variables read to `used` (with their values) and the
        referenced names that are not set to `unset`."""
        value = self._shortcut_value(word, env, used, unset)
        if value is not None:
            return value
        expansion = self._expand(word, env, words=False)
        for name in expansion.used:
            used[name] = env[name]
        unset.update(expansion.unset)
        return expansion.value

    def lex_word_with_matches(self, word: str, env: Mapping[str, str]) -> Expansion:
        """`expand_word_with_matches` character by character, without the shortcuts."""
        return self._expand(word, env, words=True)

    def has_syntax(self, word: str) -> bool:
        """Whether expanding `word` could change it (a `$`, quote, escape or leading BOM)."""
        return ("$" in word or self.escape in word or word[:1] == "\ufeff"
                or (not self.skip_process_quotes and ("'" in word or '"' in word)))

    def _shortcut_value(self, word: str, env: Mapping[str, str], used: dict[str, str],
                        unset: set[str]) -> str | None:
        """The expansion of a plain or simple word (noting the variables read), else None.

        Simple: ASCII, no escape character, no single quote and an even number of double
        quotes (which then only delimit), every `$` starting a reference `_reference` reads.
        """
        if len(word) > self.max_length:  # the lexer also caps each operand it reads
            return None
        if not self.has_syntax(word):
            return word
        if self._reference is None or self.escape in word or not word.isascii():
            return None
        quotes = 0
        if not self.skip_process_quotes:
            quotes = word.count('"')
            if quotes % 2 or "'" in word:
                return None
        pieces = self._reference.split(word)  # text, then 4 groups and text per reference
        if len(pieces) // 5 != word.count("$"):
            return None
        if quotes:
            pieces[::5] = [text.replace('"', "") for text in pieces[::5]]
        return _substitute(pieces, env, used, unset, self.max_length)

    def _expand(self, word: str, env: Mapping[str, str], *, words: bool) -> Expansion:
        state = Machine(self, word, env)
        try:
            out = state.until("", raw_escapes=self.raw_escapes, words=words)
        except DockerfileError as err:
            raise DockerfileError(f"failed to process {_go_quote(word)}: {err.message}") from None
        except RecursionError:
            raise DockerfileError(
                f"failed to process {_go_quote(word)}: substitutions nested too deeply") from None
        return Expansion(out.text(), tuple(out.finish_words()), frozenset(state.used),
                         frozenset(state.unset))


def _substitute(pieces: list[str], env: Mapping[str, str], used: dict[str, str],
                unset: set[str], limit: int) -> str | None:
    """Join the text pieces with the values of the references between them (`re.split`
    groups: bare name, braced name, operator, word); None when longer than `limit`."""
    parts = [pieces[0]]
    size = 0
    for index in range(1, len(pieces), 5):
        name = pieces[index] or pieces[index + 1]
        value = env.get(name)
        if value is None:
            unset.add(name)
        else:
            used[name] = value
        operator = pieces[index + 2]
        if operator is not None:
            empty = not value if operator[0] == ":" else value is None
            if operator[-1] == "-":
                value = pieces[index + 3] if empty else value
            else:
                value = "" if empty else pieces[index + 3]
        size += len(value or "")
        if size > limit:  # stop early: the lexer reports it
            return None
        parts.append(value or "")
        parts.append(pieces[index + 4])
    value = "".join(parts)
    return value if len(value) <= limit else None


def _go_quote(text: str, *, limit: int = 256) -> str:
    """`text` as Go's %q prints it (how BuildKit names the word in its messages), shortened."""
    parts = ['"']
    for char in text[:limit]:
        code = ord(char)
        if char in _GO_ESCAPES:
            parts.append(_GO_ESCAPES[char])
        elif char.isprintable():
            parts.append(char)
        elif code < 0x20 or code == 0x7F:
            parts.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            parts.append("\\ufffd")
        elif code < 0x10000:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(f"\\U{code:08x}")
    parts.append('"' if len(text) <= limit else '"...')
    return "".join(parts)
