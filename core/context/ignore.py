"""`.dockerignore`: reading the file, Docker's matching rules, and choosing which file applies.

The behaviour follows what BuildKit does with moby's `ignorefile` reader and `patternmatcher`:

* Reading: lines split on "\\n"; a UTF-8 BOM is dropped from the first line; a line whose first
  character is `#` is a comment; every other line is trimmed of Go whitespace on both sides and
  skipped when empty. A leading `!` marks an exception (re-include); the rest is trimmed again,
  cleaned like Go's `filepath.Clean` (`a/../b` -> `b`, `//` -> `/`, `./x` -> `x`) and one leading
  `/` is dropped, so `/foo` and `foo` are the same pattern.
* Patterns: `*` is any run of characters without `/`, `?` one character other than `/`, `[...]`
  a class (ranges, `^` negation, `\\` escapes), `\\x` the literal `x`. `**` followed by `/` or in
  the middle is "zero or more directories"; a trailing `**` is "anything". Syntax is checked
  with the rules of Go's `filepath.Match`; a lone `!` or a malformed pattern is a `ContextError`
  naming the line.
* Matching: a path (relative to the context root, `/`-separated) is excluded when the last
  pattern that matches it, or matches one of its parent directories, is not an exception.
  The context root itself is never excluded.

Patterns compile once to a regular expression and to a small automaton. The automaton runs in
time linear in the path whatever the pattern; the (faster) backtracking regex is used only when
the path is short enough that its worst case stays small, so no pattern makes matching explode.
"""

from __future__ import annotations

import os
import posixpath
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ContextError

DOCKERIGNORE = ".dockerignore"
#: Go's `unicode.IsSpace` set, which `strings.TrimSpace` strips (str.strip() also strips \x1c-\x1f)
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + (
    "\u2028\u2029\u202f\u205f\u3000"
)
#: the most backtracking steps (roughly path length ** unbounded wildcards) we let `re` risk
_BACKTRACK_BUDGET = 100_000
_DEFAULT_MAX_BYTES = 8 * 1024 * 1024


# --- patterns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CharTest:
    """The single characters one pattern position accepts: a union of ranges, maybe negated."""

    ranges: tuple[tuple[str, str], ...] = ()
    negated: bool = False

    def accepts(self, char: str) -> bool:
        return any(lo <= char <= hi for lo, hi in self.ranges) != self.negated

    def regex(self) -> str:
        if not self.negated and len(self.ranges) == 1 and self.ranges[0][0] == self.ranges[0][1]:
            return re.escape(self.ranges[0][0])
        if self.negated and not self.ranges:
            return "."
        parts = "".join(
            re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
            for lo, hi in self.ranges
        )
        return f"[{'^' if self.negated else ''}{parts}]"


_ANY_CHAR = _CharTest(negated=True)
_NOT_SLASH = _CharTest((("/", "/"),), negated=True)
_SLASH = _CharTest((("/", "/"),))


@dataclass(frozen=True)
class _Token:
    """One pattern element: a character test, a run of them (`*`), or `(.*/)?` (inner `**`)."""

    test: _CharTest
    repeat: bool = False
    dirs: bool = False

    def regex(self) -> str:
        if self.dirs:
            return "(?:.*/)?"
        return self.test.regex() + ("*" if self.repeat else "")


_STAR = _Token(_NOT_SLASH, repeat=True)
_ANYTHING = _Token(_ANY_CHAR, repeat=True)
_DIRECTORIES = _Token(_ANY_CHAR, dirs=True)


def _literal(char: str) -> _Token:
    return _Token(_CharTest(((char, char),)))


def _tokenize(pattern: str) -> tuple[_Token, ...]:
    """Translate a cleaned pattern (without `!`); ValueError describes a syntax error."""
    tokens: list[_Token] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            token, i = _double_star(pattern, i)
            tokens.append(token)
        elif char == "*":
            tokens.append(_STAR)
            i += 1
        elif char == "?":
            tokens.append(_Token(_NOT_SLASH))
            i += 1
        elif char == "[":
            test, i = _char_class(pattern, i + 1)
            tokens.append(_Token(test))
        elif char == "\\":
            if i + 1 == len(pattern):
                raise ValueError("trailing backslash escapes nothing")
            tokens.append(_literal(pattern[i + 1]))
            i += 2
        else:
            tokens.append(_literal(char))
            i += 1
    return tuple(tokens)


def _double_star(pattern: str, start: int) -> tuple[_Token, int]:
    """`**` at `start`: a following `/` belongs to it; at the end it is "anything"."""
    end = start + 2
    if pattern.startswith("/", end):
        end += 1
    if end == len(pattern):
        return _ANYTHING, end
    if start == 0 and end == 2 and not any(c in "*?[]\\" for c in pattern[2:]):
        # moby tests a leading `**` followed by plain text as a suffix ("**.go": any path ending
        # in ".go"), not as "(.*/)?"; keep that so the same files are excluded.
        return _ANYTHING, end
    return _DIRECTORIES, end


def _char_class(pattern: str, i: int) -> tuple[_CharTest, int]:
    """Parse after `[` with the rules of Go's filepath.Match; return the test and end index."""
    negated = pattern.startswith("^", i)
    i += negated
    ranges: list[tuple[str, str]] = []
    while not (ranges and pattern.startswith("]", i)):
        lo, i = _class_char(pattern, i)
        hi = lo
        if pattern.startswith("-", i):
            hi, i = _class_char(pattern, i + 1)
        if lo > hi:
            raise ValueError(f"character range {lo}-{hi} is out of order")
        ranges.append((lo, hi))
    return _CharTest(tuple(ranges), negated), i + 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise ValueError("malformed character class")
    if pattern[i] == "\\":
        i += 1
    if i + 1 >= len(pattern):
        raise ValueError("unterminated character class")
    if "\udc80" <= pattern[i] <= "\udcff":
        raise ValueError("invalid UTF-8 in character class")
    return pattern[i], i + 1


@dataclass(frozen=True)
class _Automaton:
    """A Thompson-style automaton run bit-parallel: bit i of a state set is node i.

    Node kinds: `one` consumes one accepted character and moves on; `run` consumes accepted
    characters and stays, or moves on without consuming; `fork` (the head of an inner `**`)
    moves on, or skips its 3-node `(.*/)?` group, without consuming. Bit `size` is "matched".
    """

    tests: tuple[_CharTest, ...]
    one: int
    run: int
    fork: int
    size: int

    @classmethod
    def build(cls, tokens: tuple[_Token, ...]) -> _Automaton:
        nodes: list[tuple[str, _CharTest]] = []
        for token in tokens:
            if token.dirs:
                nodes += [("fork", _ANY_CHAR), ("run", _ANY_CHAR), ("one", _SLASH)]
            else:
                nodes.append(("run" if token.repeat else "one", token.test))

        def mask(kind: str) -> int:
            return sum(1 << i for i, (node_kind, _) in enumerate(nodes) if node_kind == kind)

        tests = tuple(test for _, test in nodes)
        return cls(tests, mask("one"), mask("run"), mask("fork"), len(nodes))

    def closure(self, states: int) -> int:
        while True:
            grown = states | (states & (self.run | self.fork)) << 1 | (states & self.fork) << 3
            if grown == states:
                return states
            states = grown

    def step(self, states: int, char: str, masks: dict[str, int]) -> int:
        """Consume `char`; `masks` caches, for one run, which nodes accept each character."""
        accepting = masks.get(char)
        if accepting is None:
            bits = (1 << i for i, test in enumerate(self.tests) if test.accepts(char))
            accepting = masks[char] = sum(bits) & (self.one | self.run)
        moved = states & accepting
        return self.closure((moved & self.one) << 1 | moved & self.run)

    def matches(self, path: str) -> bool:
        """Whether the pattern matches `path` or a prefix of it that ends before a `/`."""
        accept = 1 << self.size
        masks: dict[str, int] = {}
        states = self.closure(1)
        for char in path:
            if char == "/" and states & accept:
                return True
            states = self.step(states, char, masks)
            if not states:
                return False
        return bool(states & accept)

    def continues_after(self, prefix: str) -> bool:
        """Whether some string starting with `prefix` may still match."""
        masks: dict[str, int] = {}
        states = self.closure(1)
        for char in prefix:
            states = self.step(states, char, masks)
            if not states:
                return False
        return True


def _regex_limit(unbounded: int) -> int:
    """The longest path whose worst-case backtracking (len ** unbounded) fits the budget."""
    if unbounded == 0:
        return sys.maxsize
    limit = int(_BACKTRACK_BUDGET ** (1 / unbounded)) + 1
    while limit > 0 and limit**unbounded > _BACKTRACK_BUDGET:
        limit -= 1
    return limit


@dataclass(frozen=True)
class IgnorePattern:
    """One compiled line: `text` is the cleaned pattern without its `!`."""

    text: str
    exception: bool
    line: int  # 1-based line in the ignore file (position in the list for compile_patterns)
    regex: re.Pattern[str] = field(repr=False, compare=False)
    automaton: _Automaton = field(repr=False, compare=False)
    regex_limit: int = field(repr=False, compare=False)

    @classmethod
    def compile(cls, text: str, *, exception: bool = False, line: int = 0) -> IgnorePattern:
        """Compile a cleaned pattern; ValueError describes a syntax error."""
        tokens = _tokenize(text)
        body = "".join(token.regex() for token in tokens)
        return cls(
            text, exception, line,
            regex=re.compile(body + r"(?=/|\Z)", re.DOTALL),
            automaton=_Automaton.build(tokens),
            regex_limit=_regex_limit(sum(token.repeat or token.dirs for token in tokens)),
        )

    def matches(self, path: str) -> bool:
        """Whether the pattern matches `path` (clean, relative) or one of its parent dirs."""
        if len(path) <= self.regex_limit:
            return self.regex.match(path) is not None
        return self.automaton.matches(path)

    def could_match_below(self, directory: str) -> bool:
        """Whether some path inside `directory` (clean, relative) might match the pattern."""
        return self.automaton.continues_after(directory + "/")


# --- matcher --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreMatcher:
    """The compiled patterns of one ignore file; `source` names the file ("" when none)."""

    patterns: tuple[IgnorePattern, ...] = ()
    source: str = ""

    @property
    def has_exceptions(self) -> bool:
        return any(pattern.exception for pattern in self.patterns)

    def deciding_pattern(self, path: str) -> IgnorePattern | None:
        """The last pattern matching `path` or a parent of it: the one that decides."""
        relative = _relative(path)
        if relative is None:
            return None
        return next((p for p in reversed(self.patterns) if p.matches(relative)), None)

    def matches(self, path: str) -> bool:
        """True when `path` (relative to the context root, `/`-separated) is excluded."""
        pattern = self.deciding_pattern(path)
        return pattern is not None and not pattern.exception

    def must_walk(self, dir_path: str) -> bool:
        """True when `dir_path` is excluded but an exception may re-include something inside.

        A walker skips an excluded directory when this is False; when True it walks it, keeps
        only the entries `matches` lets through, and keeps the directory itself only if one of
        them survives. The answer errs on the side of walking.
        """
        relative = _relative(dir_path)
        if relative is None or not self.matches(relative):
            return False
        return any(p.exception and p.could_match_below(relative) for p in self.patterns)


def _clean(path: str) -> str:
    """Go's filepath.Clean for "/" paths (posixpath keeps a leading "//", Go does not)."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _relative(path: str) -> str | None:
    """A context path in the form patterns are matched against; None for the root."""
    cleaned = _clean(path).lstrip("/")
    return None if cleaned in ("", ".") else cleaned


def _compile_line(raw: str, line: int, source: str) -> IgnorePattern:
    """patternmatcher.New for one entry: trim, clean, split off `!`, check, compile."""
    text = _clean(raw.strip(_GO_SPACE))
    exception = text.startswith("!")
    try:
        if text == "!":
            raise ValueError('"!" alone is not a pattern')
        return IgnorePattern.compile(text[exception:], exception=exception, line=line)
    except ValueError as exc:
        shown = raw if len(raw) <= 80 else raw[:77] + "..."
        raise ContextError(f"{source}:{line}: invalid pattern {shown!r}: {exc}") from None


def compile_patterns(patterns: Iterable[str], *, source: str = "patterns") -> IgnoreMatcher:
    """Compile patterns already read (`!` prefixes allowed, blanks skipped), e.g. excludes."""
    compiled = tuple(
        _compile_line(raw, number, source)
        for number, raw in enumerate(patterns, start=1)
        if raw.strip(_GO_SPACE)
    )
    return IgnoreMatcher(compiled, source)


def _read_lines(text: str) -> Iterator[tuple[int, str]]:
    """ignorefile.ReadAll: (line number, pattern) for each line that is a pattern."""
    for number, line in enumerate(text.split("\n"), start=1):
        if number == 1:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = line.strip(_GO_SPACE)
        if not pattern:
            continue
        exception = pattern.startswith("!")
        if exception:
            pattern = pattern[1:].strip(_GO_SPACE)
        if pattern:
            pattern = _clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        yield number, "!" + pattern if exception else pattern


def parse_ignore(data: bytes | str, *, source: str = DOCKERIGNORE) -> IgnoreMatcher:
    """Parse the contents of an ignore file. Raises ContextError naming `source:line`."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    compiled = tuple(_compile_line(raw, number, source) for number, raw in _read_lines(text))
    return IgnoreMatcher(compiled, source)


def filter_paths(matcher: IgnoreMatcher, paths: Iterable[str]) -> list[str]:
    """The paths the matcher keeps, in order, plus listed parent directories of kept paths.

    An excluded directory stays when something inside it is re-included, as BuildKit sends it.
    """
    listed = list(paths)
    kept = [not matcher.matches(path) for path in listed]
    parents: set[str] = set()
    for path, keep in zip(listed, kept, strict=True):
        relative = _relative(path)
        if keep and relative is not None:
            parts = relative.split("/")
            parents.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return [
        path for path, keep in zip(listed, kept, strict=True)
        if keep or _relative(path) in parents
    ]


# --- choosing and loading the file ------------------------------------------------------------


def ignore_file_candidates(dockerfile: str) -> tuple[str, ...]:
    """Ignore files to look for, most specific first: `<Dockerfile>.dockerignore`, then the
    context's `.dockerignore`. `dockerfile` is relative to the context root (or absolute)."""
    specific = _clean(dockerfile) + DOCKERIGNORE
    return (specific, DOCKERIGNORE) if specific != DOCKERIGNORE else (DOCKERIGNORE,)


def select_ignore_file(existing: Iterable[str], dockerfile: str) -> str | None:
    """Which ignore file applies, given the paths that exist (relative to the context root,
    absolute for a Dockerfile outside it); None when neither candidate exists."""
    present = {_clean(path) for path in existing}
    return next((c for c in ignore_file_candidates(dockerfile) if c in present), None)


def load_ignore(
    context_dir: Path, dockerfile: Path, *, max_bytes: int = _DEFAULT_MAX_BYTES
) -> IgnoreMatcher:
    """Read the ignore file that applies to `dockerfile` (relative to `context_dir` or absolute);
    an empty matcher when there is none. A file inside the context must resolve inside it."""
    context = Path(os.path.abspath(context_dir))
    absolute = Path(os.path.abspath(context / dockerfile))
    name = absolute.relative_to(context).as_posix() if absolute.is_relative_to(context) else (
        absolute.as_posix()
    )
    present = [c for c in ignore_file_candidates(name) if (context / c).is_file()]
    chosen = select_ignore_file(present, name)
    if chosen is None:
        return IgnoreMatcher()
    path = context / chosen
    if not Path(chosen).is_absolute() and not path.resolve().is_relative_to(context.resolve()):
        raise ContextError(f"{chosen} points outside the build context")
    return parse_ignore(_read_capped(path, chosen, max_bytes), source=chosen)


def _read_capped(path: Path, name: str, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ContextError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ContextError(f"{name} is larger than {max_bytes} bytes")
    return data
