"""Shell patterns of the `${V#p}` `${V%p}` `${V/p/r}` family, matched the way BuildKit does.

A pattern knows `*` (any run of characters), `?` (one character) and backslash escapes of `*`,
`?` and `\\`; a backslash in front of `}` or `/` is dropped (it only kept the `${...}` scanner
from ending there). Like the regular expressions BuildKit translates patterns into, neither
wildcard matches a newline. Every other escape is an error.

Matching is a Thompson-style simulation over the pattern's positions (no backtracking), so a
pattern with many stars cannot take exponential time; a work budget still bounds the
pathological `len(value) * len(pattern)` case. Pattern operations follow Go's regexp semantics:
`#`/`%` pick the shortest match, `##`/`%%` the longest, `/` and `//` the leftmost match and,
for that start, the longest one, and `//` skips an empty match right after a previous match.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import DockerfileError

#: upper bound on pattern-matching steps (thread moves) spent on one substitution
MATCH_BUDGET = 2_000_000

_LIT, _ANY, _STAR, _END = 0, 1, 2, 3


@dataclass(frozen=True)
class ShellPattern:
    """A compiled pattern: a small NFA whose states are the positions between tokens."""

    source: str
    tokens: tuple[tuple[int, str], ...]  # (kind, literal character) per pattern position
    start: tuple[int, ...]  # states reachable before reading anything
    moves: tuple[tuple[int, str, tuple[int, ...]], ...]  # per state: kind, char, states after

    @property
    def literal(self) -> str | None:
        """The text the pattern matches when it has no wildcard, else None."""
        if any(kind != _LIT for kind, _ in self.tokens):
            return None
        return "".join(char for _, char in self.tokens)


def compile_pattern(source: str) -> ShellPattern:
    """Compile `source` (the expanded pattern text, escapes still in it)."""
    tokens: list[tuple[int, str]] = []
    # Go's text/scanner, which BuildKit reads the pattern with, drops a leading BOM.
    i = 1 if source.startswith("\ufeff") else 0
    while i < len(source):
        char = source[i]
        i += 1
        if char == "*":
            tokens.append((_STAR, ""))
        elif char == "?":
            tokens.append((_ANY, ""))
        elif char != "\\":
            tokens.append((_LIT, char))
        elif i < len(source) and source[i] in "}/":
            continue
        elif i < len(source) and source[i] in "*?\\":
            tokens.append((_LIT, source[i]))
            i += 1
        else:
            what = f"'\\{source[i]}'" if i < len(source) else "'\\' at the end"
            raise DockerfileError(
                f"invalid pattern ({_shown(source)}) in substitution: invalid escape {what}")
    return _automaton(source, tuple(tokens))


def _automaton(source: str, tokens: tuple[tuple[int, str], ...]) -> ShellPattern:
    closures: list[tuple[int, ...]] = []
    for state in range(len(tokens) + 1):
        end = state
        while end < len(tokens) and tokens[end][0] == _STAR:
            end += 1
        closures.append(tuple(range(state, end + 1)))
    moves = [(kind, char, closures[state] if kind == _STAR else closures[state + 1])
             for state, (kind, char) in enumerate(tokens)]
    moves.append((_END, "", ()))
    return ShellPattern(source, tokens, closures[0], tuple(moves))


def _shown(source: str) -> str:
    return source if len(source) <= 100 else source[:100] + "..."


def reverse_pattern(source: str) -> str:
    """Reverse a pattern, keeping each escape pair (`\\x`) in front of the character it escapes."""
    units: list[str] = []
    i = 0
    while i < len(source):
        width = 2 if source[i] == "\\" and i + 1 < len(source) else 1
        units.append(source[i:i + width])
        i += width
    return "".join(reversed(units))


class _Matcher:
    """Runs one pattern against text, charging every thread move to a shared budget."""

    def __init__(self, pattern: ShellPattern) -> None:
        self.pattern = pattern
        self.budget = MATCH_BUDGET

    def prefix_end(self, text: str, *, longest: bool) -> int | None:
        """End of the shortest or longest match at the start of `text`, or None.

        All threads begin together here, so the simulation is a lazily built DFA: each step is
        one look-up once the (states, character) transition has been seen."""
        final = len(self.pattern.tokens)
        states = frozenset(self.pattern.start)
        seen: dict[tuple[frozenset[int], str], frozenset[int]] = {}
        best = 0 if final in states else None
        pos = 0
        while states and pos < len(text) and (longest or best is None):
            key = (states, text[pos])
            after = seen.get(key)
            if after is None:
                after = seen[key] = frozenset(self._step(dict.fromkeys(states, 0), text[pos]))
            states = after
            pos += 1
            if final in states:
                best = pos
        return best

    def search(self, text: str, start: int) -> tuple[int, int] | None:
        """Leftmost match at or after `start`, as (begin, end), longest for that beginning."""
        final = len(self.pattern.tokens)
        threads: dict[int, int] = {}  # state -> earliest beginning of a thread in it
        best: tuple[int, int] | None = None
        kind, first, _ = self.pattern.moves[0]
        pos = start
        while True:
            if not threads and kind == _LIT:  # nothing under way: jump to a possible beginning
                pos = text.find(first, pos)
                if pos < 0:
                    return best
            if best is None:
                for state in self.pattern.start:
                    threads.setdefault(state, pos)
            if final in threads and (best is None or threads[final] <= best[0]):
                best = (threads[final], pos)
            if pos == len(text) or (not threads and best is not None):
                return best
            threads = self._step(threads, text[pos])
            pos += 1
            if best is not None:  # threads that began later can no longer win
                threads = {s: t for s, t in threads.items() if t <= best[0]}

    def _step(self, threads: dict[int, int], char: str) -> dict[int, int]:
        """Advance every thread over `char`."""
        self.budget -= len(threads) + 1
        if self.budget < 0:
            raise DockerfileError(
                f"pattern ({_shown(self.pattern.source)}) in substitution is too costly to match")
        moves = self.pattern.moves
        moved: dict[int, int] = {}
        for state, begin in threads.items():
            kind, want, targets = moves[state]
            if kind == _LIT:
                if char != want:
                    continue
            elif kind == _END or char == "\n":
                continue
            for reached in targets:
                if moved.get(reached, begin) >= begin:
                    moved[reached] = begin
        return moved


def trim_prefix(source: str, value: str, *, longest: bool) -> str:
    """`${V#pattern}` (shortest) and `${V##pattern}` (longest)."""
    return _trim_prefix(compile_pattern(source), value, longest=longest)


def trim_suffix(source: str, value: str, *, longest: bool) -> str:
    """`${V%pattern}` and `${V%%pattern}`: a prefix trim of the reversed value."""
    pattern = compile_pattern(reverse_pattern(source))
    return _trim_prefix(pattern, value[::-1], longest=longest)[::-1]


def _trim_prefix(pattern: ShellPattern, value: str, *, longest: bool) -> str:
    literal = pattern.literal
    if literal is not None:
        return value[len(literal):] if value.startswith(literal) else value
    end = _Matcher(pattern).prefix_end(value, longest=longest)
    return value if end is None else value[end:]


def replace_first(source: str, value: str, replacement: str) -> str:
    """`${V/pattern/replacement}`: the replacement is inserted as it is."""
    pattern = compile_pattern(source)
    literal = pattern.literal
    if literal is not None:
        at = value.find(literal)
        found = None if at < 0 else (at, at + len(literal))
    else:
        found = _Matcher(pattern).search(value, 0)
    if found is None:
        return value
    return value[:found[0]] + replacement + value[found[1]:]


def replace_all(source: str, value: str, template: str, *, max_length: int) -> str:
    """`${V//pattern/replacement}`; like Go's ReplaceAllString, `$0` in the replacement is the
    match, `$$` a dollar, and any other `$name` or `${name}` reference is empty."""
    pattern = compile_pattern(source)
    literal = pattern.literal
    if literal is not None:
        insert = expand_template(template, literal)
        count = value.count(literal)
        if len(value) + count * (len(insert) - len(literal)) > max_length:
            raise _too_long(max_length)
        return value.replace(literal, insert)
    return _replace_each(_Matcher(pattern), value, template, max_length)


def _replace_each(matcher: _Matcher, value: str, template: str, max_length: int) -> str:
    parts: list[str] = []
    size = last_end = search = 0
    while search <= len(value):
        found = matcher.search(value, search)
        if found is None:
            break
        begin, end = found
        parts.append(value[last_end:begin])
        size += begin - last_end
        if end > last_end or begin == 0:  # no empty match right after the previous match
            parts.append(expand_template(template, value[begin:end]))
            size += len(parts[-1])
        if size > max_length:
            raise _too_long(max_length)
        last_end = end
        search = _advance(search, end, len(value))
    parts.append(value[last_end:])
    return "".join(parts)


def _advance(search: int, end: int, length: int) -> int:
    """Where Go's ReplaceAll looks next: past the match, and always at least one character on."""
    width = 1 if search < length else 0
    if search + width > end:
        return search + width
    if search + 1 > end:
        return search + 1
    return end


def _too_long(max_length: int) -> DockerfileError:
    return DockerfileError(f"expansion result is longer than {max_length} characters")


def expand_template(template: str, match: str) -> str:
    """Go's regexp template expansion for a pattern without groups."""
    if "$" not in template:
        return template
    parts: list[str] = []
    i = 0
    while (dollar := template.find("$", i)) >= 0:
        parts.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            parts.append("$")
            i += 1
            continue
        reference = _template_reference(template, i)
        if reference is None:
            parts.append("$")
            continue
        name, i = reference
        if name == "0":
            parts.append(match)
    parts.append(template[i:])
    return "".join(parts)


def _template_reference(template: str, i: int) -> tuple[str, int] | None:
    """The `name` or `{name}` starting at `i` and the index after it, or None if malformed."""
    brace = template.startswith("{", i)
    first = end = i + 1 if brace else i
    while end < len(template) and (template[end].isalpha() or template[end].isdecimal()
                                   or template[end] == "_"):
        end += 1
    if end == first:
        return None
    if brace:
        if not template.startswith("}", end):
            return None
        return template[first:end], end + 1
    return template[first:end], end
